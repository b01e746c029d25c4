with

source as (

    select * from {{ source('ingest', 'labs') }}
    {{ in_refresh_scope() }}

),

renamed as (

    select

        ----------  ids
        patient_key,

        ---------- strings
        analyte,
        unit,

        ---------- numerics (canonical unit; limits as exported, defaults are applied downstream)
        cast(value as double) as value,
        cast(lln as double) as reported_lln,
        cast(uln as double) as reported_uln,

        ---------- dates
        cast(sample_date as date) as sample_date,

        ---------- lineage
        source_file,
        source_row,
        record_id

    from source

)

select * from renamed
