{#- CTCAE v4.03 thresholds: the one home of "multiplier x reference".

    ctcae_threshold(): the value a criterion of seed ctcae_v4_03_lab_criteria compares with, its
    reference being the LLN, the ULN, the patient's baseline value or 1 ('absolute'). Rounded to 6
    decimals, as int_lab_results_graded rounds the value, so that a value exactly at a band edge stays
    on the edge. Null when the reference is unknown. int_lab_results_graded grades every lab result
    with it.

    create_ctcae_thresholds_function(): the seed's post-hook. It publishes the same expression in
    the warehouse as the DuckDB table macro reference.ctcae_thresholds(analyte, lln, uln, baseline),
    one row per grade: grade, direction ('low' / 'high') and the value at which the grade starts.
    A grade with criteria on several references (creatinine: ULN and baseline) starts where the first
    of them is crossed (the highest threshold for '<', the lowest for '>'), because the grade of a
    value is the highest grade among its met criteria. The app draws its grade bands from it, for a
    sample's own limits or any other LLN/ULN; SQL users can call it too. The body names no catalog,
    so it works in the published file whatever its name (after USE of it, when attached). -#}

{% macro ctcae_threshold(multiplier, reference, lln, uln, baseline) -%}
    round(
        {{ multiplier }} * case {{ reference }}
            when 'lln' then {{ lln }}
            when 'uln' then {{ uln }}
            when 'baseline' then {{ baseline }}
            when 'absolute' then 1.0
        end,
        6
    )
{%- endmacro %}

{% macro create_ctcae_thresholds_function() -%}
    {%- set criteria = this.include(database=False) -%}
    create or replace macro {{ this.schema }}.ctcae_thresholds(
        for_analyte, lln_value, uln_value, baseline_value
    ) as table
    select
        grade,
        direction,
        case any_value(comparison)
            when '<' then max(threshold)
            when '>' then min(threshold)
        end as threshold
    from (
        select
            grade,
            direction,
            comparison,
            {{ ctcae_threshold(
                'multiplier', 'reference',
                'cast(lln_value as double)', 'cast(uln_value as double)', 'cast(baseline_value as double)'
            ) }} as threshold
        from {{ criteria }}
        where analyte = for_analyte
    ) as criteria
    where threshold is not null
    group by grade, direction
    order by grade
{%- endmacro %}
