-- Lab results placed in time relative to the first administration, with the patient's baseline
-- value per analyte: the last value on or before the first administration, at most
-- var('baseline_window_days') days before it (ties on a date: the later export line).

with

labs as (

    select * from {{ ref('int_lab_results_ranged') }}

),

treatment as (

    select patient_key, first_cycle_date from {{ ref('int_treatment_summary') }}

),

timed as (

    select
        labs.*,
        treatment.first_cycle_date,
        date_diff('day', treatment.first_cycle_date, labs.sample_date) as days_from_first_cycle

    from labs
    left join treatment on labs.patient_key = treatment.patient_key

),

windowed as (

    select
        *,
        coalesce(
            days_from_first_cycle between -{{ var('baseline_window_days') }} and 0,
            false
        ) as is_in_baseline_window

    from timed

),

ranked as (

    select
        *,
        row_number() over (
            partition by patient_key, analyte, is_in_baseline_window
            order by sample_date desc, record_id desc
        ) as recency_rank

    from windowed

),

baselined as (

    select
        patient_key,
        sample_date,
        analyte,
        value,
        unit,
        reported_lln,
        reported_uln,
        lln,
        uln,
        lln_source,
        uln_source,
        first_cycle_date,
        days_from_first_cycle,
        is_in_baseline_window and recency_rank = 1 as is_baseline,
        coalesce(days_from_first_cycle > 0, false) as is_post_baseline,
        max(case when is_in_baseline_window and recency_rank = 1 then value end)
            over (partition by patient_key, analyte) as baseline_value,
        source_file,
        source_row,
        record_id

    from ranked

)

select * from baselined
