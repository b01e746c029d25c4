{#-
    One row per treated patient: best overall response, unconfirmed (as in the paper) and confirmed
    (RECIST 1.1, as pharmaverse admiralonco's derive_param_confirmed_bor derives it). Contract
    section 4 (v2).

    Both read CT/MRI only (int_recist_assessments: seed imaging_modalities), strictly after the first
    administration, up to and including the first PD: best response is recorded from the start of
    treatment until progression (RECIST 1.1 section 4.4.1; admiralonco's source_pd), so a PR after a
    PD (after other therapy) does not count. Ga-68 DOTATATE PET never reaches this model.

    Unconfirmed: the best of CR > PR > SD > PD (seed recist_1_1_response; NE is unranked, so never
    counts), SD only at >= var('sd_min_duration_days') days after the first administration.

    Confirmed: admiralonco's rules, with its options as vars: ref_confirm =
    var('response_confirmation_days'), max_nr_ne = var('max_nr_ne'), accept_sd = var('accept_sd'),
    ref_start_window = var('sd_min_duration_days'). Precedence CR > PR > SD > PD > NE, dated by the
    earliest assessment of the winning category.

    before_landmark_only = true: the same rule over the assessments before the landmark only
    (days_from_first_cycle < var landmark_months x var days_per_month; macro before_landmark), for
    int_best_overall_response_at_landmark. One definition for both, so they cannot drift apart.
-#}

{% macro best_overall_response(before_landmark_only=false) %}

{%- set max_nr_sd = 1 if var('accept_sd') else 0 %}

with

assessments as (

    select * from {{ ref('int_recist_assessments') }}
    where is_post_baseline
    {%- if before_landmark_only %}
        -- only what was known before the landmark
        and {{ before_landmark('days_from_first_cycle') }}
    {%- endif %}

),

treatment as (

    select patient_key from {{ ref('int_treatment_summary') }}

),

recist as (

    select response, rank as response_rank from {{ ref('recist_1_1_response') }}

),

progression as (

    select
        patient_key,
        min(assessment_date) filter (where recist_response = 'PD') as first_pd_date

    from assessments
    group by patient_key

),

recist_window as (

    -- the assessments best response is read from: up to and including the first PD, in order
    -- (seq; the export line breaks ties on a date)
    select
        assessments.patient_key,
        assessments.assessment_date,
        assessments.recist_response,
        assessments.days_from_first_cycle,
        recist.response_rank,
        row_number() over (
            partition by assessments.patient_key order by assessments.assessment_date, assessments.record_id
        ) as seq

    from assessments
    inner join progression on assessments.patient_key = progression.patient_key
    left join recist on assessments.recist_response = recist.response
    where progression.first_pd_date is null or assessments.assessment_date <= progression.first_pd_date

),

-- unconfirmed ------------------------------------------------------------------------------------

qualifying as (

    select *
    from recist_window
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

-- confirmed (admiralonco derive_param_confirmed_bor) ---------------------------------------------

candidates as (

    -- every CR and PR that a later assessment could confirm
    select * from recist_window where recist_response in ('CR', 'PR')

),

followers as (

    -- each candidate with every assessment after it, and the first one that can confirm it: the
    -- first CR (for a CR) or CR/PR (for a PR) at least response_confirmation_days later
    -- (admiralonco: filter_joined(join_type = "after", first_cond_upper = ...)). Only that one counts,
    -- so a confirmation period that fails is not rescued by a later assessment.
    select
        candidates.patient_key,
        candidates.seq as candidate_seq,
        candidates.assessment_date as candidate_date,
        candidates.recist_response as candidate_response,
        later.seq,
        later.assessment_date,
        later.recist_response,
        min(later.seq) filter (
            where date_diff('day', candidates.assessment_date, later.assessment_date)
                    >= {{ var('response_confirmation_days') }}
                and (later.recist_response = 'CR' or (candidates.recist_response = 'PR' and later.recist_response = 'PR'))
        ) over (partition by candidates.patient_key, candidates.seq) as confirming_seq

    from candidates
    inner join recist_window as later
        on candidates.patient_key = later.patient_key
        and later.seq > candidates.seq

),

confirmation_periods as (

    -- what lies between a candidate and its confirming assessment, the confirming one included
    select
        patient_key,
        candidate_seq,
        candidate_date,
        candidate_response,
        bool_and(recist_response in ('CR', 'NE')) as is_only_cr_or_ne,
        bool_and(recist_response in ('CR', 'PR', 'SD', 'NE')) as is_only_cr_pr_sd_or_ne,
        count(*) filter (where recist_response = 'NE') as n_ne,
        count(*) filter (where recist_response = 'SD') as n_sd,
        min(assessment_date) filter (where recist_response = 'CR') as first_cr_date,
        max(assessment_date) filter (where recist_response = 'PR') as last_pr_date

    from followers
    where seq <= confirming_seq
    group by patient_key, candidate_seq, candidate_date, candidate_response

),

confirmed_responses as (

    select
        patient_key,
        candidate_date as assessment_date,
        candidate_response as response

    from confirmation_periods
    where n_ne <= {{ var('max_nr_ne') }}
        and (
            (candidate_response = 'CR' and is_only_cr_or_ne)
            or (
                candidate_response = 'PR'
                and is_only_cr_pr_sd_or_ne
                -- accept_sd = false: no SD in the period; true: at most one
                and n_sd <= {{ max_nr_sd }}
                -- a CR followed by a PR in the period does not confirm a PR
                and (first_cr_date is null or last_pr_date is null or first_cr_date > last_pr_date)
            )
        )

),

response_events as (

    -- admiralonco's potential responses, by precedence (its tmp_order without NON-CR/NON-PD, which
    -- this export has no value for)
    select patient_key, assessment_date, response, 1 as precedence
    from confirmed_responses where response = 'CR'

    union all

    select patient_key, assessment_date, response, 2 as precedence
    from confirmed_responses where response = 'PR'

    union all

    -- any CR, PR or SD at >= ref_start_window counts as SD (so an unconfirmed CR/PR falls back to SD)
    select patient_key, assessment_date, 'SD' as response, 3 as precedence
    from recist_window
    where recist_response in ('CR', 'PR', 'SD') and days_from_first_cycle >= {{ var('sd_min_duration_days') }}

    union all

    select patient_key, assessment_date, 'PD' as response, 4 as precedence
    from recist_window where recist_response = 'PD'

    union all

    -- NE, and a CR, PR or SD before ref_start_window
    select patient_key, assessment_date, 'NE' as response, 5 as precedence
    from recist_window
    where recist_response = 'NE'
        or (recist_response in ('CR', 'PR', 'SD') and days_from_first_cycle < {{ var('sd_min_duration_days') }})

),

best_precedence as (

    select patient_key, min(precedence) as precedence
    from response_events
    group by patient_key

),

confirmed as (

    -- the best category, dated by its earliest assessment
    select
        response_events.patient_key,
        any_value(response_events.response) as confirmed_best_overall_response,
        min(response_events.assessment_date) as confirmed_best_overall_response_date

    from response_events
    inner join best_precedence
        on response_events.patient_key = best_precedence.patient_key
        and response_events.precedence = best_precedence.precedence
    group by response_events.patient_key

),

assessed as (

    select patient_key, count(*) as n_post_baseline_assessments
    from assessments
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
        -- every post-baseline assessment yields an event, so this is null only without one
        -- (admiralonco: 'MISSING' with missing_as_ne = FALSE)
        confirmed.confirmed_best_overall_response,
        confirmed.confirmed_best_overall_response_date

    from treatment
    left join assessed on treatment.patient_key = assessed.patient_key
    left join unconfirmed on treatment.patient_key = unconfirmed.patient_key
    left join confirmed on treatment.patient_key = confirmed.patient_key

)

select * from final

{% endmacro %}
