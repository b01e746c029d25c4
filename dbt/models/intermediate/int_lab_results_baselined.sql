-- Lab results placed in time relative to the first administration, with the patient's baseline
-- value per analyte: the last value on or before the first administration, at most
-- var('baseline_window_days') days before it (ties on a date: the later export line).
--
-- The baseline is a grouped aggregate joined back to the labs, not a window over them: a hash
-- aggregate of the in-window samples is about 3x faster than partitioning and sorting every lab
-- row by patient and analyte (107 M rows at a million patients). The aggregate reads the labs
-- through its own ref rather than the CTE of the main query: DuckDB materialises a CTE
-- read twice, which would stop the patient batches of fct_lab_result's full build (a patient_key
-- range) from reaching the labs scan.

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

baselines as (

    -- per patient x analyte the latest in-window sample (macro recency_key), and its value
    select
        baseline_labs.patient_key,
        baseline_labs.analyte,
        arg_max(baseline_labs.record_id, {{ recency_key('baseline_labs.sample_date', 'baseline_labs.record_id') }})
            as baseline_record_id,
        arg_max(baseline_labs.value, {{ recency_key('baseline_labs.sample_date', 'baseline_labs.record_id') }})
            as baseline_value

    from {{ ref('int_lab_results_ranged') }} as baseline_labs
    inner join {{ ref('int_treatment_summary') }} as baseline_treatment
        on baseline_labs.patient_key = baseline_treatment.patient_key
    where date_diff('day', baseline_treatment.first_cycle_date, baseline_labs.sample_date)
        between -{{ var('baseline_window_days') }} and 0
    group by baseline_labs.patient_key, baseline_labs.analyte

),

baselined as (

    select
        timed.patient_key,
        timed.sample_date,
        timed.analyte,
        timed.value,
        timed.unit,
        timed.reported_lln,
        timed.reported_uln,
        timed.lln,
        timed.uln,
        timed.lln_source,
        timed.uln_source,
        timed.first_cycle_date,
        timed.days_from_first_cycle,
        coalesce(timed.record_id = baselines.baseline_record_id, false) as is_baseline,
        coalesce(timed.days_from_first_cycle > 0, false) as is_post_baseline,
        baselines.baseline_value,
        timed.record_id

    from timed
    left join baselines
        on timed.patient_key = baselines.patient_key
        and timed.analyte = baselines.analyte

)

select * from baselined
