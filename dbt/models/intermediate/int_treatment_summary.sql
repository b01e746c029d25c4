-- One row per treated patient: first/last administration, number of cycles, cumulative activity, and
-- the number of cycles and activity administered before the landmark (days from the first
-- administration < var('landmark_months') x var('days_per_month'), macro before_landmark), counted as
-- n_cycles and cumulative_activity_gbq are.

with

cycles as (

    select
        *,
        min(administration_date) over (partition by patient_key) as first_cycle_date

    from {{ ref('stg_cycles') }}

),

summarised as (

    select
        patient_key,
        min(administration_date) as first_cycle_date,
        max(administration_date) as last_cycle_date,
        count(*) as n_cycles,
        -- rounded to 0.1 MBq to drop floating-point noise from MBq/mCi conversions
        round(sum(activity_gbq), 4) as cumulative_activity_gbq,
        count(*) filter (
            where {{ before_landmark("date_diff('day', first_cycle_date, administration_date)") }}
        ) as n_cycles_at_landmark,
        round(sum(activity_gbq) filter (
            where {{ before_landmark("date_diff('day', first_cycle_date, administration_date)") }}
        ), 4) as cumulative_activity_gbq_at_landmark

    from cycles
    group by patient_key

)

select * from summarised
