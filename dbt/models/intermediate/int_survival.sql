-- One row per treated patient: overall survival from the first administration.
--   end_date = death_date when dead, else last_contact_date; when the export has no follow-up row
--   for a treated patient, the patient is censored at the latest date observed in any export file.
--   os_months = days / var('days_per_month') (30.4375); os_event = 1 death, 0 censored.

with

treatment as (

    select * from {{ ref('int_treatment_summary') }}

),

follow_up_ranked as (

    -- normally one row per patient; if several, a death wins, then the latest contact
    select
        *,
        row_number() over (
            partition by patient_key
            order by (vital_status = 'dead') desc, last_contact_date desc nulls last, record_id desc
        ) as preference

    from {{ ref('stg_follow_up') }}

),

follow_up as (

    select * from follow_up_ranked where preference = 1

),

observed_dates as (

    select patient_key, administration_date as observed_date from {{ ref('stg_cycles') }}
    union all
    select patient_key, sample_date from {{ ref('stg_labs') }}
    union all
    select patient_key, assessment_date from {{ ref('stg_performance_status') }}
    union all
    select patient_key, assessment_date from {{ ref('stg_tumour_assessments') }}

),

last_observation as (

    select patient_key, max(observed_date) as last_observed_date
    from observed_dates
    group by patient_key

),

ended as (

    select
        treatment.patient_key,
        treatment.first_cycle_date as start_date,
        case
            when follow_up.vital_status = 'dead' then follow_up.death_date
            when follow_up.last_contact_date is not null then follow_up.last_contact_date
            else last_observation.last_observed_date
        end as end_date,
        case
            when follow_up.vital_status = 'dead' then 'death'
            when follow_up.last_contact_date is not null then 'last_contact'
            else 'last_observation'
        end as end_date_source,
        coalesce(follow_up.vital_status, 'unknown') as vital_status,
        case when follow_up.vital_status = 'dead' then 1 else 0 end as os_event

    from treatment
    left join follow_up on treatment.patient_key = follow_up.patient_key
    left join last_observation on treatment.patient_key = last_observation.patient_key

),

final as (

    select
        patient_key,
        start_date,
        end_date,
        end_date_source,
        vital_status,
        date_diff('day', start_date, end_date) as os_days,
        {{ months("date_diff('day', start_date, end_date)") }} as os_months,
        os_event

    from ended

)

select * from final
