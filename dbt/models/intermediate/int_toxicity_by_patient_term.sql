-- One row per treated patient x CTCAE term of the criteria seed (dense: a term without samples has
-- n_post_baseline_samples = 0 and a null worst_grade).
-- Post-baseline = samples strictly after the first administration.

with

graded_labs as (

    -- the materialised graded labs: grading runs once per refresh, in fct_lab_result,
    -- rather than again (three times over) inside this view
    select * from {{ ref('fct_lab_result') }}
    where ctcae_term is not null
    {{ in_refresh_scope('and') }}

),

treated_patients as (

    select patient_key from {{ ref('int_treatment_summary') }}

),

terms as (

    select distinct ctcae_term, analyte from {{ ref('ctcae_v4_03_lab_criteria') }}

),

patient_terms as (

    select
        treated_patients.patient_key,
        terms.ctcae_term,
        terms.analyte

    from treated_patients
    cross join terms

),

baseline as (

    select
        patient_key,
        ctcae_term,
        sample_date as baseline_date,
        value as baseline_value,
        ctcae_grade as baseline_grade

    from graded_labs
    where is_baseline

),

post_baseline as (

    select
        patient_key,
        ctcae_term,
        count(*) as n_post_baseline_samples,
        count(ctcae_grade) as n_post_baseline_graded_samples,
        max(ctcae_grade) as worst_grade,
        min(sample_date) filter (where ctcae_grade >= 1) as first_onset_date

    from graded_labs
    where is_post_baseline
    group by patient_key, ctcae_term

),

worst_grade_dates as (

    select
        graded_labs.patient_key,
        graded_labs.ctcae_term,
        min(graded_labs.sample_date) as worst_grade_date

    from graded_labs
    inner join post_baseline
        on graded_labs.patient_key = post_baseline.patient_key
        and graded_labs.ctcae_term = post_baseline.ctcae_term
        and graded_labs.ctcae_grade = post_baseline.worst_grade
    where graded_labs.is_post_baseline
    group by graded_labs.patient_key, graded_labs.ctcae_term

),

joined as (

    select
        patient_terms.patient_key,
        patient_terms.ctcae_term,
        patient_terms.analyte,
        baseline.baseline_date,
        baseline.baseline_value,
        baseline.baseline_grade,
        post_baseline.worst_grade,
        worst_grade_dates.worst_grade_date,
        post_baseline.first_onset_date,
        post_baseline.worst_grade > baseline.baseline_grade as is_worse_than_baseline,
        coalesce(post_baseline.n_post_baseline_samples, 0) as n_post_baseline_samples,
        coalesce(post_baseline.n_post_baseline_graded_samples, 0) as n_post_baseline_graded_samples

    from patient_terms
    left join baseline
        on patient_terms.patient_key = baseline.patient_key
        and patient_terms.ctcae_term = baseline.ctcae_term
    left join post_baseline
        on patient_terms.patient_key = post_baseline.patient_key
        and patient_terms.ctcae_term = post_baseline.ctcae_term
    left join worst_grade_dates
        on patient_terms.patient_key = worst_grade_dates.patient_key
        and patient_terms.ctcae_term = worst_grade_dates.ctcae_term

)

select * from joined
