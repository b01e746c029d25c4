-- One row per treated patient x CTCAE term of the criteria seed (dense: a term without samples has
-- n_post_baseline_samples = 0 and a null worst_grade).
-- Post-baseline = samples strictly after the first administration. worst_grade_at_landmark: the same,
-- over the post-baseline samples before the landmark only (macro before_landmark), in the same pass.

with

graded_labs as (

    -- the materialised graded labs: grading runs once per refresh, in fct_lab_result
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

per_patient_term as (

    -- one pass over the graded labs (reading them once keeps DuckDB from materialising them):
    -- the baseline sample (is_baseline marks exactly one per patient x analyte) and the
    -- post-baseline samples' summary
    select
        patient_key,
        ctcae_term,
        any_value(sample_date) filter (where is_baseline) as baseline_date,
        any_value(value) filter (where is_baseline) as baseline_value,
        any_value(ctcae_grade) filter (where is_baseline) as baseline_grade,
        count(*) filter (where is_post_baseline) as n_post_baseline_samples,
        count(ctcae_grade) filter (where is_post_baseline) as n_post_baseline_graded_samples,
        max(ctcae_grade) filter (where is_post_baseline) as worst_grade,
        max(ctcae_grade) filter (
            where is_post_baseline and {{ before_landmark('days_from_first_cycle') }}
        ) as worst_grade_at_landmark,
        -- the earliest sample among those of the worst grade: the first by (grade descending, date)
        arg_min(sample_date, {'grade_descending': -ctcae_grade, 'sample_date': sample_date})
            filter (where is_post_baseline and ctcae_grade is not null) as worst_grade_date,
        min(sample_date) filter (where is_post_baseline and ctcae_grade >= 1) as first_onset_date

    from graded_labs
    where is_baseline or is_post_baseline
    group by patient_key, ctcae_term

),

joined as (

    select
        patient_terms.patient_key,
        patient_terms.ctcae_term,
        patient_terms.analyte,
        per_patient_term.baseline_date,
        per_patient_term.baseline_value,
        per_patient_term.baseline_grade,
        per_patient_term.worst_grade,
        per_patient_term.worst_grade_at_landmark,
        per_patient_term.worst_grade_date,
        per_patient_term.first_onset_date,
        -- treatment-emergent (the one home of the rule): worse than the baseline grade, a missing
        -- baseline grade (no gradable sample in the baseline window) counting as grade 0
        per_patient_term.worst_grade > coalesce(per_patient_term.baseline_grade, 0) as is_worse_than_baseline,
        case
            when per_patient_term.worst_grade > coalesce(per_patient_term.baseline_grade, 0)
                then per_patient_term.worst_grade
            when per_patient_term.worst_grade is not null then 0
        end as treatment_emergent_grade,
        coalesce(per_patient_term.n_post_baseline_samples, 0) as n_post_baseline_samples,
        coalesce(per_patient_term.n_post_baseline_graded_samples, 0) as n_post_baseline_graded_samples

    from patient_terms
    left join per_patient_term
        on patient_terms.patient_key = per_patient_term.patient_key
        and patient_terms.ctcae_term = per_patient_term.ctcae_term

)

select * from joined
