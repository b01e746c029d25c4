-- Seed ctcae_v4_03_lab_criteria is coherent:
--   * each analyte is graded for exactly one term (the lab grain relies on it);
--   * 'low' terms compare with '<', 'high' terms with '>';
--   * every term has a grade 1 criterion.
with

criteria as (

    select * from {{ ref('ctcae_v4_03_lab_criteria') }}

),

analyte_with_several_terms as (

    select analyte, 'analyte graded for several terms' as problem
    from criteria
    group by analyte
    having count(distinct ctcae_term) > 1

),

direction_mismatch as (

    select analyte, 'direction does not match comparison' as problem
    from criteria
    where (direction = 'low' and comparison != '<') or (direction = 'high' and comparison != '>')

),

missing_grade_1 as (

    select min(analyte) as analyte, 'term without a grade 1 criterion' as problem
    from criteria
    group by ctcae_term
    having not bool_or(grade = 1)

)

select * from analyte_with_several_terms
union all
select * from direction_mismatch
union all
select * from missing_grade_1
