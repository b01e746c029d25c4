-- One row per treated patient: ECOG and KPS before and after PRRT, each from its own non-null values.
--   pre  = baseline: the last value on or before the first administration, at most
--          var('baseline_window_days') days before it;
--   post = the last value assessed at least var('post_treatment_ps_min_days') days after the
--          last administration.
-- Ties on a date are broken by the later export line.
--
-- "The last" is the greatest (assessment_date, record_id) (macro recency_key) in one grouped pass
-- rather than a row_number window per scale and period: 10 M assessments at a million patients.

{%- set scale_periods = [('ecog', 'pre'), ('ecog', 'post'), ('kps', 'pre'), ('kps', 'post')] %}

with

performance_status as (

    select * from {{ ref('stg_performance_status') }}

),

treatment as (

    select patient_key, first_cycle_date, last_cycle_date from {{ ref('int_treatment_summary') }}

),

timed as (

    select
        performance_status.patient_key,
        performance_status.assessment_date,
        performance_status.record_id,
        performance_status.ecog,
        performance_status.kps,
        date_diff('day', performance_status.assessment_date, treatment.first_cycle_date)
            between 0 and {{ var('baseline_window_days') }} as is_pre,
        date_diff('day', treatment.last_cycle_date, performance_status.assessment_date)
            >= {{ var('post_treatment_ps_min_days') }} as is_post,
        {{ recency_key('performance_status.assessment_date', 'performance_status.record_id') }} as recency

    from performance_status
    inner join treatment on performance_status.patient_key = treatment.patient_key

),

latest as (

    select
        treatment.patient_key,
        {%- for scale, period in scale_periods %}
        arg_max(timed.{{ scale }}, timed.recency) filter (where timed.{{ scale }} is not null and timed.is_{{ period }})
            as {{ scale }}_{{ period }},
        arg_max(timed.assessment_date, timed.recency) filter (where timed.{{ scale }} is not null and timed.is_{{ period }})
            as {{ scale }}_{{ period }}_date
        {{- ',' if not loop.last }}
        {%- endfor %}

    from treatment
    left join timed on treatment.patient_key = timed.patient_key
    group by treatment.patient_key

)

select * from latest
