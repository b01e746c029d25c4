-- Identifying lineage, for data managers only: every accepted export row with its record
-- number (patient_id), its file and line. The marts carry no lineage (no source_file,
-- source_row or record_id), so nothing an analyst can query joins back to a file line or,
-- through audit.rejected_rows, to a record number. To trace a mart row, join on its
-- patient_key and its date (and analyte, modality or cycle number).

{%- set entities = [
    ('patients', 'cast(null as date)', 'cast(null as varchar)'),
    ('metastases', 'cast(null as date)', 'site'),
    ('cycles', 'administration_date', 'cast(cycle_number as varchar)'),
    ('labs', 'sample_date', 'analyte'),
    ('performance_status', 'assessment_date', 'cast(null as varchar)'),
    ('tumour_assessments', 'assessment_date', 'modality'),
    ('follow_up', 'last_contact_date', 'vital_status'),
] %}

{%- for entity, record_date, record_detail in entities %}

select
    '{{ entity }}' as entity,
    patient_key,
    patient_id,
    cast({{ record_date }} as date) as record_date,
    {{ record_detail }} as record_detail,
    source_file,
    source_row,
    record_id
from {{ source('ingest', entity) }}
{% if not loop.last %}union all{% endif %}
{%- endfor %}
