-- One row per treated patient x endpoint (ADaM ADTTE in spirit): OS, PFS, TTP for every treated
-- patient, DOR and TTR for responders. Time counts in days from start_date (day 0; for DOR the
-- first response) to end_date; months = days / var('days_per_month'). event 1 = the endpoint's
-- event, 0 = censored at end_date; event_or_censor_reason says which date end_date is.
--
-- The rules (dbt/README.md, "Time to event, precisely"; contract section 4):
--   OS   int_survival as it is (death, else last contact, else the latest observed date).
--   PFS  first administration -> first PD on CT/MRI or death; censored at the last adequate
--        assessment (post-baseline CR/PR/SD before any PD: NE is not adequate); with none, censored
--        at day 1. Deaths count whenever they happen, unless var pfs_death_max_days_after_assessment
--        is set: then a death more than that many days after the last adequate assessment (or the
--        first administration) is censored at that assessment.
--   TTP  as PFS, every death censored.
--   DOR  responders (var dor_responders: confirmed or unconfirmed best response CR/PR): first CR/PR
--        (up to the first PD) -> PD or death (same death rule as PFS); censored at the last adequate
--        assessment.
--   TTR  responders: first administration -> first CR/PR; always an event.
-- Assessments come from int_recist_assessments (CT/MRI of treated patients, post-baseline only here).

{%- set death_window = var('pfs_death_max_days_after_assessment') %}
{%- set responders = var('dor_responders') %}
{%- if responders not in ('confirmed', 'unconfirmed') %}
    {{ exceptions.raise_compiler_error("var dor_responders must be 'confirmed' or 'unconfirmed', not '" ~ responders ~ "'") }}
{%- endif %}

with

survival as (

    select * from {{ ref('int_survival') }}

),

assessments as (

    select patient_key, assessment_date, recist_response
    from {{ ref('int_recist_assessments') }}
    where is_post_baseline

),

response as (

    select
        patient_key,
        {{ 'confirmed_best_overall_response' if responders == 'confirmed' else 'best_overall_response' }}
            in ('CR', 'PR') as is_responder

    from {{ ref('int_best_overall_response') }}

),

first_pd as (

    select patient_key, min(assessment_date) filter (where recist_response = 'PD') as first_pd_date
    from assessments
    group by patient_key

),

-- adequate = an evaluable response (CR, PR, SD) before any PD
adequate as (

    select assessments.patient_key, assessments.assessment_date, assessments.recist_response
    from assessments
    left join first_pd on assessments.patient_key = first_pd.patient_key
    where assessments.recist_response in ('CR', 'PR', 'SD')
        and (first_pd.first_pd_date is null or assessments.assessment_date < first_pd.first_pd_date)

),

adequate_summary as (

    select
        patient_key,
        max(assessment_date) as last_adequate_date,
        min(assessment_date) filter (where recist_response in ('CR', 'PR')) as first_response_date

    from adequate
    group by patient_key

),

patients as (

    select
        survival.patient_key,
        survival.start_date,
        first_pd.first_pd_date,
        adequate_summary.last_adequate_date,
        adequate_summary.first_response_date,
        coalesce(response.is_responder, false) and adequate_summary.first_response_date is not null
            as is_responder,
        case when survival.os_event = 1 then survival.end_date end as death_date,
        -- a death counts as progression (PFS, DOR) unless it came too long after the last assessment
        survival.os_event = 1
        {%- if death_window is not none %}
            and date_diff('day', coalesce(adequate_summary.last_adequate_date, survival.start_date), survival.end_date)
                <= {{ death_window }}
        {%- endif %}
            as death_counts

    from survival
    left join first_pd on survival.patient_key = first_pd.patient_key
    left join adequate_summary on survival.patient_key = adequate_summary.patient_key
    left join response on survival.patient_key = response.patient_key

),

progression as (

    -- PFS and DOR end at the first of progression and a death that counts; all three censor at
    -- the last adequate assessment (PFS and TTP at day 1 without one)
    select
        *,
        case
            when first_pd_date is not null and (not death_counts or first_pd_date <= death_date) then first_pd_date
            when death_counts then death_date
        end as progression_or_death_date,
        case
            when first_pd_date is not null and (not death_counts or first_pd_date <= death_date)
                then 'progression (CT/MRI)'
            when death_counts then 'death'
        end as progression_or_death_reason,
        case
            when last_adequate_date is not null then 'last adequate assessment'
            else 'no adequate post-baseline assessment'
        end as censor_reason

    from patients

),

ended as (

    select
        patient_key,
        'OS' as endpoint,
        start_date,
        end_date,
        os_event as event,
        case end_date_source
            when 'death' then 'death'
            when 'last_contact' then 'last contact'
            else 'last observation (no follow-up row)'
        end as event_or_censor_reason

    from survival

    union all

    select
        patient_key,
        'PFS',
        start_date,
        coalesce(progression_or_death_date, last_adequate_date, start_date + 1),
        case when progression_or_death_date is not null then 1 else 0 end,
        coalesce(progression_or_death_reason, censor_reason)

    from progression

    union all

    select
        patient_key,
        'TTP',
        start_date,
        coalesce(first_pd_date, last_adequate_date, start_date + 1),
        case when first_pd_date is not null then 1 else 0 end,
        case when first_pd_date is not null then 'progression (CT/MRI)' else censor_reason end

    from progression

    union all

    select
        patient_key,
        'DOR',
        first_response_date,
        coalesce(progression_or_death_date, last_adequate_date),
        case when progression_or_death_date is not null then 1 else 0 end,
        coalesce(progression_or_death_reason, censor_reason)

    from progression
    where is_responder

    union all

    select
        patient_key,
        'TTR',
        start_date,
        first_response_date,
        1,
        'response (CR/PR)'

    from progression
    where is_responder

),

final as (

    select
        patient_key,
        endpoint,
        start_date,
        end_date,
        date_diff('day', start_date, end_date) as days,
        {{ months("date_diff('day', start_date, end_date)") }} as months,
        event,
        event_or_censor_reason

    from ended

)

select * from final
