with

source as (

    select * from {{ source('ingest', 'tumour_assessments') }}
    {{ in_refresh_scope() }}

),

renamed as (

    select

        ----------  ids
        patient_key,

        ---------- strings
        modality,
        recist_response,

        ---------- numerics
        cast(sum_of_diameters_mm as double) as sum_of_diameters_mm,

        ---------- dates
        cast(assessment_date as date) as assessment_date,

        ---------- lineage
        source_file,
        source_row,
        record_id

    from source

)

select * from renamed
