-- One row per treated patient: best overall response, unconfirmed (as in the paper) and confirmed
-- (RECIST 1.1). Ranks come from seed recist_1_1_response (NE is unranked, so never counts); the
-- windows are vars: sd_min_duration_days (42) and response_confirmation_days (28).
-- Only assessments strictly after the first administration are considered.

with

assessments as (

    select * from {{ ref('stg_tumour_assessments') }}

),

treatment as (

    select patient_key, first_cycle_date from {{ ref('int_treatment_summary') }}

),

recist as (

    select response, rank as response_rank from {{ ref('recist_1_1_response') }}

),

post_baseline as (

    select
        assessments.patient_key,
        assessments.assessment_date,
        assessments.recist_response,
        recist.response_rank,
        date_diff('day', treatment.first_cycle_date, assessments.assessment_date) as days_from_first_cycle

    from assessments
    inner join treatment on assessments.patient_key = treatment.patient_key
    left join recist on assessments.recist_response = recist.response
    where assessments.assessment_date > treatment.first_cycle_date

),

-- unconfirmed ------------------------------------------------------------------------------------

qualifying as (

    select *
    from post_baseline
    where response_rank is not null
        and (recist_response != 'SD' or days_from_first_cycle >= {{ var('sd_min_duration_days') }})

),

unconfirmed as (

    select
        patient_key,
        arg_min(recist_response, response_rank) as best_overall_response

    from qualifying
    group by patient_key

),

-- confirmed (RECIST 1.1) -------------------------------------------------------------------------

progression as (

    select
        patient_key,
        min(assessment_date) filter (where recist_response = 'PD') as first_pd_date

    from post_baseline
    group by patient_key

),

recist_window as (

    -- best response is recorded from the start of treatment until disease progression
    select post_baseline.*
    from post_baseline
    inner join progression on post_baseline.patient_key = progression.patient_key
    where progression.first_pd_date is null or post_baseline.assessment_date <= progression.first_pd_date

),

latest_responses as (

    -- a response is confirmed by a later one at least response_confirmation_days after it: there is
    -- one exactly when the patient's latest such response is (one grouped pass, no self-join)
    select
        patient_key,
        max(assessment_date) filter (where recist_response = 'CR') as last_cr_date,
        max(assessment_date) filter (where recist_response in ('CR', 'PR')) as last_cr_or_pr_date

    from recist_window
    group by patient_key

),

confirmation as (

    select
        response.patient_key,
        response.assessment_date,
        response.recist_response,
        response.days_from_first_cycle,
        coalesce(
            date_diff('day', response.assessment_date, latest_responses.last_cr_date)
                >= {{ var('response_confirmation_days') }},
            false
        ) as has_later_cr,
        coalesce(
            date_diff('day', response.assessment_date, latest_responses.last_cr_or_pr_date)
                >= {{ var('response_confirmation_days') }},
            false
        ) as has_later_cr_or_pr

    from recist_window as response
    inner join latest_responses on response.patient_key = latest_responses.patient_key

),

confirmed as (

    select
        patient_key,
        case
            when bool_or(recist_response = 'CR' and has_later_cr) then 'CR'
            when bool_or(recist_response = 'PR' and has_later_cr_or_pr) then 'PR'
            when bool_or(
                recist_response in ('CR', 'PR', 'SD')
                and days_from_first_cycle >= {{ var('sd_min_duration_days') }}
            ) then 'SD'
            when bool_or(recist_response = 'PD') then 'PD'
        end as confirmed_best_overall_response

    from confirmation
    group by patient_key

),

assessed as (

    select patient_key, count(*) as n_post_baseline_assessments
    from post_baseline
    group by patient_key

),

final as (

    select
        treatment.patient_key,
        coalesce(assessed.n_post_baseline_assessments, 0) as n_post_baseline_assessments,
        case
            when unconfirmed.best_overall_response is not null then unconfirmed.best_overall_response
            when assessed.n_post_baseline_assessments > 0 then 'NE'
        end as best_overall_response,
        case
            when confirmed.confirmed_best_overall_response is not null
                then confirmed.confirmed_best_overall_response
            when assessed.n_post_baseline_assessments > 0 then 'NE'
        end as confirmed_best_overall_response

    from treatment
    left join assessed on treatment.patient_key = assessed.patient_key
    left join unconfirmed on treatment.patient_key = unconfirmed.patient_key
    left join confirmed on treatment.patient_key = confirmed.patient_key

)

select * from final
