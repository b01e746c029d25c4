with

source as (

    select * from {{ source('ingest', 'follow_up') }}
    {{ in_refresh_scope() }}

),

renamed as (

    select

        ----------  ids
        patient_key,

        ---------- strings
        vital_status,

        ---------- dates
        cast(last_contact_date as date) as last_contact_date,
        cast(death_date as date) as death_date,

        ---------- lineage
        source_file,
        source_row,
        record_id

    from source

)

select * from renamed
