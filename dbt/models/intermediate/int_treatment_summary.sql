-- One row per treated patient: first/last administration, number of cycles, cumulative activity.

with

cycles as (

    select * from {{ ref('stg_cycles') }}

),

summarised as (

    select
        patient_key,
        min(administration_date) as first_cycle_date,
        max(administration_date) as last_cycle_date,
        count(*) as n_cycles,
        -- rounded to 0.1 MBq to drop floating-point noise from MBq/mCi conversions
        round(sum(activity_gbq), 4) as cumulative_activity_gbq

    from cycles
    group by patient_key

)

select * from summarised
