-- dim_patient's treatment summary agrees with fct_treatment_cycle.
with

cycles as (

    select
        patient_key,
        count(*) as n_cycles,
        sum(activity_gbq) as cumulative_activity_gbq,
        min(administration_date) as first_cycle_date,
        max(administration_date) as last_cycle_date

    from {{ ref('fct_treatment_cycle') }}
    group by patient_key

)

select
    dim_patient.patient_key,
    dim_patient.n_cycles,
    cycles.n_cycles as n_cycles_in_fct,
    dim_patient.cumulative_activity_gbq,
    cycles.cumulative_activity_gbq as cumulative_activity_gbq_in_fct

from {{ ref('dim_patient') }} as dim_patient
full outer join cycles on dim_patient.patient_key = cycles.patient_key
where dim_patient.n_cycles is distinct from cycles.n_cycles
    or abs(dim_patient.cumulative_activity_gbq - cycles.cumulative_activity_gbq) > 0.001
    or dim_patient.first_cycle_date is distinct from cycles.first_cycle_date
    or dim_patient.last_cycle_date is distinct from cycles.last_cycle_date
