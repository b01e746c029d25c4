-- Lab results with the reference limits used for grading: the exported LLN/ULN, else the default
-- from seed lab_reference_ranges (the row for the patient's sex first, then the row with empty sex).
-- LLN and ULN are defaulted independently.

with

labs as (

    select * from {{ ref('stg_labs') }}

),

patients as (

    select patient_key, sex from {{ ref('stg_patients') }}

),

reference_ranges as (

    select
        analyte,
        nullif(trim(sex), '') as sex,
        lln,
        uln

    from {{ ref('lab_reference_ranges') }}

),

ranged as (

    select
        labs.patient_key,
        labs.sample_date,
        labs.analyte,
        labs.value,
        labs.unit,
        labs.reported_lln,
        labs.reported_uln,
        coalesce(labs.reported_lln, sex_specific.lln, any_sex.lln) as lln,
        coalesce(labs.reported_uln, sex_specific.uln, any_sex.uln) as uln,
        case
            when labs.reported_lln is not null then 'export'
            when coalesce(sex_specific.lln, any_sex.lln) is not null then 'default'
        end as lln_source,
        case
            when labs.reported_uln is not null then 'export'
            when coalesce(sex_specific.uln, any_sex.uln) is not null then 'default'
        end as uln_source,
        labs.record_id

    from labs
    left join patients
        on labs.patient_key = patients.patient_key
    left join reference_ranges as sex_specific
        on labs.analyte = sex_specific.analyte
        and patients.sex = sex_specific.sex
    left join reference_ranges as any_sex
        on labs.analyte = any_sex.analyte
        and any_sex.sex is null

)

select * from ranged
