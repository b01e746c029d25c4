-- One row per imaging assessment (every modality: Ga-68 DOTATATE PET is shown beside RECIST),
-- placed in time relative to the first administration, with the RECIST 1.1 baseline sum of diameters
-- and the percent change from it.
--   is_recist: the modality is a RECIST 1.1 measurement modality (seed imaging_modalities: CT, MRI);
--   baseline: the last non-null CT/MRI sum on or before the first administration, at most
--             var('tumour_baseline_window_days') (28) days before it (RECIST 1.1: "never more than
--             4 weeks before the beginning of the treatment"; contract section 4, v2). Labs and ECOG/KPS
--             keep their own 60-day baseline_window_days;
--   percent change (the waterfall's bars): CT/MRI only. A PET sum is not measured as RECIST measures,
--             so it carries none.

with

assessments as (

    select * from {{ ref('stg_tumour_assessments') }}

),

modalities as (

    select modality, is_recist from {{ ref('imaging_modalities') }}

),

treatment as (

    select patient_key, first_cycle_date from {{ ref('int_treatment_summary') }}

),

timed as (

    select
        assessments.*,
        coalesce(modalities.is_recist, false) as is_recist,
        date_diff('day', treatment.first_cycle_date, assessments.assessment_date) as days_from_first_cycle

    from assessments
    left join modalities on assessments.modality = modalities.modality
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
    where is_recist
        and sum_of_diameters_mm is not null
        and days_from_first_cycle between -{{ var('tumour_baseline_window_days') }} and 0

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
        timed.is_recist,
        timed.recist_response,
        timed.sum_of_diameters_mm,
        timed.days_from_first_cycle,
        coalesce(timed.days_from_first_cycle > 0, false) as is_post_baseline,
        baseline.baseline_sum_of_diameters_mm,
        case
            when timed.is_recist and timed.days_from_first_cycle > 0 and baseline.baseline_sum_of_diameters_mm > 0
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
