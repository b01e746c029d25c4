-- Chromogranin A before and after PRRT, one row per patient with a chromogranin A result (the
-- paper's Table 1 column "CgA (pre- and post-treatment)"), in ng/mL (the analyte's canonical unit;
-- not CTCAE-graded):
--   pre  = the baseline value by the lab baseline rule (int_lab_results_baselined: the last value on
--          or before the first administration, at most var('baseline_window_days') days before);
--   post = the last sample strictly after the first administration (ties on a date: the later
--          export line, macro recency_key), whatever the gap since the last cycle.

with

chromogranin_a as (

    select * from {{ ref('int_lab_results_baselined') }}
    where analyte = 'chromogranin_a'
        and value is not null

),

pre_post as (

    select
        patient_key,
        -- the same on every row of the patient's analyte
        any_value(baseline_value) as cga_pre_ng_ml,
        arg_max(value, {{ recency_key('sample_date', 'record_id') }}) filter (where is_post_baseline)
            as cga_post_ng_ml

    from chromogranin_a
    group by patient_key

)

select * from pre_post
