{#-
    The derived patient groups of marts.dim_patient (survival strata that do not depend on the app's
    filters), each rule written once and applied both from day 0 and at the landmark. Thresholds are
    vars (dbt_project.yml) or seeds (response_groups, ki67_groups); the labels are built from them.
-#}

{#- True when `days_expr` (days from the first administration) lies before the landmark:
    days < landmark_months x days_per_month, compared as doubles (6 x 30.4375 = 182.625 days, so day
    182 is before the landmark and day 183 is not). -#}
{% macro before_landmark(days_expr) -%}
    (cast({{ days_expr }} as double) < {{ landmark_days() }})
{%- endmacro %}


{% macro landmark_days() -%}
    (cast({{ var('landmark_months') }} as double) * cast({{ var('days_per_month') }} as double))
{%- endmacro %}


{#- '<= N-1' / '>= N' by the number of cycles (N = var cycles_group_min_cycles); null when the number is
    null (never treated). 0 cycles, if it occurred, is '<= N-1'. -#}
{% macro cycles_group(n_cycles_expr) -%}
    {%- set n = var('cycles_group_min_cycles') | int -%}
    case
        when {{ n_cycles_expr }} >= {{ n }} then '>= {{ n }}'
        when {{ n_cycles_expr }} is not null then '<= {{ n - 1 }}'
    end
{%- endmacro %}


{#- '>= M' / '< M' by the worst post-baseline CTCAE grade over all terms (M = var
    toxicity_group_min_grade). A missing grade (no post-baseline sample could be graded) counts as
    grade 0 (CTCAE grade 0 or not gradable: not a grade >= M toxicity); null for a patient never treated
    (`treated_expr` false or null: there is no post-baseline period). -#}
{% macro toxicity_grade_group(worst_grade_expr, treated_expr) -%}
    {%- set m = var('toxicity_group_min_grade') | int -%}
    case
        when not coalesce({{ treated_expr }}, false) then null
        when coalesce({{ worst_grade_expr }}, 0) >= {{ m }} then '>= {{ m }}'
        else '< {{ m }}'
    end
{%- endmacro %}
