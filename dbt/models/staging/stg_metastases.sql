with

source as (

    select * from {{ source('ingest', 'metastases') }}
    {{ in_refresh_scope() }}

),

renamed as (

    select

        ----------  ids
        patient_key,

        ---------- strings
        site as metastatic_site,

        ---------- lineage
        source_file,
        source_row,
        record_id

    from source

)

select * from renamed
