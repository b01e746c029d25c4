-- CTCAE v4.03 grade of every lab result, from the criteria seed (one row per term x grade x
-- criterion) rather than a CASE ladder per analyte:
--   a criterion is met when value < multiplier x reference (or >), the reference being the LLN, the
--   ULN, the patient's baseline value or 1 (absolute thresholds);
--   grade = the highest grade among met criteria (so creatinine takes the higher of its ULN- and
--   baseline-based grades); when none is met: 0 if every criterion of the term was evaluable
--   (reference not null), else null (cannot say normal), as pharmaverse admiral does.
-- The threshold is macros/ctcae_thresholds.sql's ctcae_threshold (rounded to 6 decimals, as the value
-- is here, so that values exactly at a band edge stay on the edge); the app's grade bands use the same
-- expression, through the warehouse macro reference.ctcae_thresholds.
--
-- Each term's criteria arrive as one list per lab result and are evaluated in place, so the lab rows
-- are read once: a lab x criterion join aggregated back onto the labs would read them twice, which
-- makes DuckDB materialise the whole upstream chain and keeps a patient filter on this view (the
-- patient batches of fct_lab_result's full build) from reaching the labs scan.

with

labs as (

    select * from {{ ref('int_lab_results_baselined') }}

),

criteria_by_term as (

    select
        analyte,
        ctcae_term,
        list({
            'grade': grade,
            'reference': reference,
            'multiplier': multiplier,
            'comparison': comparison
        }) as criteria

    from {{ ref('ctcae_v4_03_lab_criteria') }}
    group by analyte, ctcae_term

),

criteria_thresholds as (

    select
        labs.*,
        criteria_by_term.ctcae_term,
        round(labs.value, 6) as compared_value,
        list_transform(criteria_by_term.criteria, lambda criterion: {
            'grade': criterion.grade,
            'comparison': criterion.comparison,
            'threshold': {{ ctcae_threshold(
                'criterion.multiplier', 'criterion.reference', 'labs.lln', 'labs.uln', 'labs.baseline_value'
            ) }}
        }) as thresholds

    from labs
    left join criteria_by_term on labs.analyte = criteria_by_term.analyte

),

term_grades as (

    select
        * exclude (compared_value, thresholds),
        list_max(list_transform(thresholds, lambda criterion:
            case
                when case criterion.comparison
                    when '<' then compared_value < criterion.threshold
                    when '>' then compared_value > criterion.threshold
                end
                then criterion.grade
            end
        )) as highest_met_grade,
        list_bool_and(list_transform(thresholds, lambda criterion: criterion.threshold is not null))
            as is_fully_evaluable

    from criteria_thresholds

),

graded as (

    select
        * exclude (highest_met_grade, is_fully_evaluable),
        case
            when highest_met_grade is not null then highest_met_grade
            when is_fully_evaluable then 0
        end as ctcae_grade

    from term_grades

)

select * from graded
