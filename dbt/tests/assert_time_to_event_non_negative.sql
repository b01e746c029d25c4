-- No endpoint ends before it starts (PFS/TTP/DOR/TTR end at an assessment or a death after the
-- start; OS as assert_survival_times_non_negative).
select *
from {{ ref('fct_time_to_event') }}
where days < 0 or months < 0
