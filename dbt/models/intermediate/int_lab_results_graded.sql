-- CTCAE v4.03 grade of every lab result, by joining the criteria seed (one row per term x grade x
-- criterion) rather than a CASE ladder per analyte:
--   a criterion is met when value < multiplier x reference (or >), the reference being the LLN, the
--   ULN, the patient's baseline value or 1 (absolute thresholds);
--   grade = the highest grade among met criteria (so creatinine takes the higher of its ULN- and
--   baseline-based grades); when none is met: 0 if every criterion of the term was evaluable
--   (reference not null), else null (cannot say normal), as pharmaverse admiral does.
-- Both sides are rounded to 6 decimals so that values exactly at a band edge stay on the edge.

with

labs as (

    select * from {{ ref('int_lab_results_baselined') }}

),

criteria as (

    select * from {{ ref('ctcae_v4_03_lab_criteria') }}

),

criteria_thresholds as (

    select
        labs.record_id,
        criteria.ctcae_term,
        criteria.grade,
        criteria.comparison,
        round(labs.value, 6) as compared_value,
        round(
            criteria.multiplier * case criteria.reference
                when 'lln' then labs.lln
                when 'uln' then labs.uln
                when 'baseline' then labs.baseline_value
                when 'absolute' then 1.0
            end,
            6
        ) as threshold

    from labs
    inner join criteria on labs.analyte = criteria.analyte

),

criteria_evaluated as (

    select
        *,
        case comparison
            when '<' then compared_value < threshold
            when '>' then compared_value > threshold
        end as is_met

    from criteria_thresholds

),

term_grades as (

    select
        record_id,
        ctcae_term,
        max(grade) filter (where is_met) as highest_met_grade,
        bool_and(threshold is not null) as is_fully_evaluable

    from criteria_evaluated
    group by record_id, ctcae_term

),

graded as (

    select
        labs.*,
        term_grades.ctcae_term,
        case
            when term_grades.highest_met_grade is not null then term_grades.highest_met_grade
            when term_grades.is_fully_evaluable then 0
        end as ctcae_grade

    from labs
    left join term_grades on labs.record_id = term_grades.record_id

)

select * from graded
