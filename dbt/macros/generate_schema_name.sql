{#-
    Use custom schema names as they are (`staging`, `intermediate`, `marts`, `reference`)
    instead of dbt's default `<target_schema>_<custom_schema>`: the contract names schema `marts`.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
