{#- Days as months: days / var('days_per_month') (365.25 / 12), the one conversion every
    time-to-event endpoint (int_survival, int_time_to_event) uses. -#}
{% macro months(days) -%}
    {{ days }} / {{ var('days_per_month') }}
{%- endmacro %}
