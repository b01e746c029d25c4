-- One row per treated patient: ECOG and KPS before and after PRRT, each from its own non-null values.
--   pre  = baseline: the last value on or before the first administration, at most
--          var('baseline_window_days') days before it;
--   post = the last value assessed at least var('post_treatment_ps_min_days') days after the
--          last administration.
-- Ties on a date are broken by the later export line.

with

performance_status as (

    select * from {{ ref('stg_performance_status') }}

),

treatment as (

    select patient_key, first_cycle_date, last_cycle_date from {{ ref('int_treatment_summary') }}

),

scores as (

    -- one row per assessment x scale, non-null values only
    select patient_key, assessment_date, record_id, 'ecog' as scale, ecog as score
    from performance_status
    where ecog is not null

    union all

    select patient_key, assessment_date, record_id, 'kps' as scale, kps as score
    from performance_status
    where kps is not null

),

timed as (

    select
        scores.*,
        date_diff('day', scores.assessment_date, treatment.first_cycle_date)
            between 0 and {{ var('baseline_window_days') }} as is_pre,
        date_diff('day', treatment.last_cycle_date, scores.assessment_date)
            >= {{ var('post_treatment_ps_min_days') }} as is_post

    from scores
    inner join treatment on scores.patient_key = treatment.patient_key

),

ranked as (

    select
        *,
        case when is_pre then row_number() over (
            partition by patient_key, scale, is_pre order by assessment_date desc, record_id desc
        ) end as pre_rank,
        case when is_post then row_number() over (
            partition by patient_key, scale, is_post order by assessment_date desc, record_id desc
        ) end as post_rank

    from timed

),

pivoted as (

    select
        treatment.patient_key,
        max(ranked.score) filter (where ranked.scale = 'ecog' and ranked.pre_rank = 1) as ecog_pre,
        max(ranked.assessment_date) filter (where ranked.scale = 'ecog' and ranked.pre_rank = 1) as ecog_pre_date,
        max(ranked.score) filter (where ranked.scale = 'ecog' and ranked.post_rank = 1) as ecog_post,
        max(ranked.assessment_date) filter (where ranked.scale = 'ecog' and ranked.post_rank = 1) as ecog_post_date,
        max(ranked.score) filter (where ranked.scale = 'kps' and ranked.pre_rank = 1) as kps_pre,
        max(ranked.assessment_date) filter (where ranked.scale = 'kps' and ranked.pre_rank = 1) as kps_pre_date,
        max(ranked.score) filter (where ranked.scale = 'kps' and ranked.post_rank = 1) as kps_post,
        max(ranked.assessment_date) filter (where ranked.scale = 'kps' and ranked.post_rank = 1) as kps_post_date

    from treatment
    left join ranked on treatment.patient_key = ranked.patient_key
    group by treatment.patient_key

)

select * from pivoted
