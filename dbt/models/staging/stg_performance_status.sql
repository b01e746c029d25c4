with

source as (

    select * from {{ source('ingest', 'performance_status') }}
    {{ in_refresh_scope() }}

),

renamed as (

    select

        ----------  ids
        patient_key,

        ---------- numerics
        cast(ecog as integer) as ecog,
        cast(kps as integer) as kps,

        ---------- dates
        cast(assessment_date as date) as assessment_date,

        ---------- lineage
        source_file,
        source_row,
        record_id

    from source

)

select * from renamed
