-- The OS rows of fct_time_to_event are fct_survival's overall survival and dim_patient's
-- os_months / os_event, patient for patient: one definition of OS, read three ways.
with

os as (

    select * from {{ ref('fct_time_to_event') }} where endpoint = 'OS'

),

survival as (

    select * from {{ ref('fct_survival') }}

),

patients as (

    select patient_key, os_months, os_event from {{ ref('dim_patient') }} where os_months is not null

)

select
    coalesce(os.patient_key, survival.patient_key, patients.patient_key) as patient_key,
    os.days as tte_days,
    survival.os_days,
    os.months as tte_months,
    survival.os_months,
    patients.os_months as dim_patient_os_months,
    os.event as tte_event,
    survival.os_event,
    patients.os_event as dim_patient_os_event

from os
full outer join survival on os.patient_key = survival.patient_key
full outer join patients on coalesce(os.patient_key, survival.patient_key) = patients.patient_key
where os.patient_key is null
    or survival.patient_key is null
    or patients.patient_key is null
    or os.start_date is distinct from survival.start_date
    or os.end_date is distinct from survival.end_date
    or os.days is distinct from survival.os_days
    or os.months is distinct from survival.os_months
    or os.months is distinct from patients.os_months
    or os.event is distinct from survival.os_event
    or os.event is distinct from patients.os_event
