-- One row per imaging assessment, placed in time relative to the first administration, with the
-- baseline sum of diameters (last non-null sum on or before the first administration, at most
-- var('baseline_window_days') days before it) and the percent change from it.

with

assessments as (

    select * from {{ ref('stg_tumour_assessments') }}

),

treatment as (

    select patient_key, first_cycle_date from {{ ref('int_treatment_summary') }}

),

timed as (

    select
        assessments.*,
        date_diff('day', treatment.first_cycle_date, assessments.assessment_date) as days_from_first_cycle

    from assessments
    left join treatment on assessments.patient_key = treatment.patient_key

),

baseline_candidates as (

    select
        patient_key,
        sum_of_diameters_mm,
        row_number() over (
            partition by patient_key order by assessment_date desc, record_id desc
        ) as recency_rank

    from timed
    where sum_of_diameters_mm is not null
        and days_from_first_cycle between -{{ var('baseline_window_days') }} and 0

),

baseline as (

    select patient_key, sum_of_diameters_mm as baseline_sum_of_diameters_mm
    from baseline_candidates
    where recency_rank = 1

),

final as (

    select
        timed.patient_key,
        timed.assessment_date,
        timed.modality,
        timed.recist_response,
        timed.sum_of_diameters_mm,
        timed.days_from_first_cycle,
        coalesce(timed.days_from_first_cycle > 0, false) as is_post_baseline,
        baseline.baseline_sum_of_diameters_mm,
        case
            when timed.days_from_first_cycle > 0 and baseline.baseline_sum_of_diameters_mm > 0
                then round(
                    100.0 * (timed.sum_of_diameters_mm - baseline.baseline_sum_of_diameters_mm)
                    / baseline.baseline_sum_of_diameters_mm,
                    1
                )
        end as pct_change_from_baseline_sum,
        timed.record_id

    from timed
    left join baseline on timed.patient_key = baseline.patient_key

)

select * from final
