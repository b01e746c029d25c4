-- One row per treated patient: ECOG and KPS before and after PRRT, each from its own non-null values.
--   pre  = baseline: the last value on or before the first administration, at most
--          var('baseline_window_days') days before it;
--   post = the FIRST value assessed at least var('ps_post_min_days_after_last_administration')
--          (90) days after the last administration: the paper's follow-up visit "at least three
--          months after the final treatment session" (contract section 4, v2). The first, not the
--          last: on long follow-up the last score is the pre-terminal one, not the treatment's effect.
-- Ties on a date are broken by the later export line.
--
-- "The last" is the greatest (assessment_date, record_id) (macro recency_key), "the first" the
-- smallest earliness_key, each in one grouped pass rather than a row_number window per scale and
-- period: 10 M assessments at a million patients.

{#- (scale, period, aggregate, ordering key): pre takes the last value, post the first -#}
{%- set scale_periods = [
    ('ecog', 'pre', 'arg_max', 'recency'), ('ecog', 'post', 'arg_min', 'earliness'),
    ('kps', 'pre', 'arg_max', 'recency'), ('kps', 'post', 'arg_min', 'earliness'),
] %}

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
            >= {{ var('ps_post_min_days_after_last_administration') }} as is_post,
        {{ recency_key('performance_status.assessment_date', 'performance_status.record_id') }} as recency,
        {{ earliness_key('performance_status.assessment_date', 'performance_status.record_id') }} as earliness

    from performance_status
    inner join treatment on performance_status.patient_key = treatment.patient_key

),

chosen as (

    select
        treatment.patient_key,
        {%- for scale, period, aggregate, key in scale_periods %}
        {{ aggregate }}(timed.{{ scale }}, timed.{{ key }}) filter (where timed.{{ scale }} is not null and timed.is_{{ period }})
            as {{ scale }}_{{ period }},
        {{ aggregate }}(timed.assessment_date, timed.{{ key }}) filter (where timed.{{ scale }} is not null and timed.is_{{ period }})
            as {{ scale }}_{{ period }}_date
        {{- ',' if not loop.last }}
        {%- endfor %}

    from treatment
    left join timed on treatment.patient_key = timed.patient_key
    group by treatment.patient_key

)

select * from chosen
