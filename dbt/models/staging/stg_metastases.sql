with

source as (

    select * from {{ source('ingest', 'metastases') }}

),

renamed as (

    select

        ----------  ids
        patient_key,

        ---------- strings
        site as metastatic_site,

        ---------- lineage
        source_row

    from source

)

select * from renamed
