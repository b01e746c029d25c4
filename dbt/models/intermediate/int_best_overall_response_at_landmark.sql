-- One row per treated patient: int_best_overall_response's rule (macros/best_overall_response.sql,
-- RECIST 1.1 as admiralonco derives it, CT/MRI only) applied to the assessments before the landmark
-- only: days from the first administration < var('landmark_months') x var('days_per_month')
-- (landmark analysis, Anderson, Cain & Gelber 1983). A response first seen after the landmark, or
-- the confirmation of one, is not known at the landmark and does not count here.

{{ best_overall_response(before_landmark_only=true) }}
