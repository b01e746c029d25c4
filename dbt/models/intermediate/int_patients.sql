-- One row per patient: characteristics, metastatic sites and age at the first cycle.
-- birth_date is read here only to compute age_at_first_cycle and is not passed on.

with

patients as (

    select * from {{ ref('stg_patients') }}

),

metastases as (

    select * from {{ ref('stg_metastases') }}

),

treatment as (

    select * from {{ ref('int_treatment_summary') }}

),

metastatic_sites as (

    select
        patient_key,
        string_agg(distinct metastatic_site, ',' order by metastatic_site) as metastatic_sites,
        count(distinct metastatic_site) as n_metastatic_sites

    from metastases
    group by patient_key

),

joined as (

    select
        patients.patient_key,
        patients.sex,
        -- completed years (not date_diff('year'), which counts calendar-year boundaries)
        cast(date_part('year', age(treatment.first_cycle_date, patients.birth_date)) as integer)
            as age_at_first_cycle,
        patients.primary_site,
        patients.tumour_grade,
        patients.ki67_percent,
        patients.prior_surgery,
        patients.prior_chemotherapy,
        patients.prior_radiotherapy,
        patients.hypertension,
        patients.diabetes,
        patients.baseline_imaging,
        patients.krenning_score,
        patients.suvmax,
        metastatic_sites.metastatic_sites,
        coalesce(metastatic_sites.n_metastatic_sites, 0) as n_metastatic_sites,
        treatment.patient_key is not null as is_treated,
        treatment.first_cycle_date,
        treatment.last_cycle_date,
        treatment.n_cycles,
        treatment.cumulative_activity_gbq,
        treatment.n_cycles_at_landmark,
        treatment.cumulative_activity_gbq_at_landmark

    from patients
    left join metastatic_sites on patients.patient_key = metastatic_sites.patient_key
    left join treatment on patients.patient_key = treatment.patient_key

)

select * from joined
