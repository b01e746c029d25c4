-- CTCAE absolute thresholds (seed ctcae_v4_03_lab_criteria) assume the canonical unit of each
-- analyte (seed lab_analytes): ingestion must have converted every value.
select
    labs.record_id,
    labs.analyte,
    labs.unit,
    analytes.canonical_unit

from {{ ref('stg_labs') }} as labs
left join {{ ref('lab_analytes') }} as analytes on labs.analyte = analytes.analyte
where analytes.canonical_unit is null or labs.unit != analytes.canonical_unit
