with

source as (

    select * from {{ source('ingest', 'cycles') }}
    {{ in_refresh_scope() }}

),

renamed as (

    select

        ----------  ids
        patient_key,
        cast(cycle_number as integer) as cycle_number,

        ---------- numerics
        cast(activity_gbq as double) as activity_gbq,

        ---------- booleans
        cast(amino_acid_infusion as boolean) as amino_acid_infusion,

        ---------- dates
        cast(administration_date as date) as administration_date,

        ---------- lineage
        source_file,
        source_row,
        record_id

    from source

)

select * from renamed
