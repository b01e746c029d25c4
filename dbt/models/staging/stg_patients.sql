with

source as (

    select * from {{ source('ingest', 'patients') }}
    {{ in_refresh_scope() }}

),

renamed as (

    select

        ----------  ids
        patient_key,

        ---------- strings
        sex,
        primary_site,
        tumour_grade,
        baseline_imaging,

        ---------- numerics
        cast(ki67_percent as double) as ki67_percent,
        cast(krenning_score as integer) as krenning_score,
        cast(suvmax as double) as suvmax,

        ---------- booleans
        cast(prior_surgery as boolean) as prior_surgery,
        cast(prior_chemotherapy as boolean) as prior_chemotherapy,
        cast(prior_radiotherapy as boolean) as prior_radiotherapy,
        cast(hypertension as boolean) as hypertension,
        cast(diabetes as boolean) as diabetes,

        ---------- dates (birth_date only to derive age; never selected into marts)
        cast(birth_date as date) as birth_date,

        ---------- lineage
        source_file,
        source_row,
        record_id

    from source

)

select * from renamed
