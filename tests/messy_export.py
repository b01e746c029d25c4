"""A small, deliberately messy export: every tolerated variation and one bad row of
each kind the contract names, with the outcome each row must have."""

from __future__ import annotations

from pathlib import Path

BOM = "\ufeff"

# Semicolons with decimal commas, a BOM, CRLF, DD/MM/YYYY, odd header case/spacing.
PATIENTS = [
    " Patient_ID ;FULL NAME;Birth_Date;Sex;Primary Site;Baseline_Imaging;Krenning_Score;Diabetes;KI67_percent",
    "H-001;Alice Example;15/03/1960;F;pancreas;tc99m_octreotide;3;+;2,5",       # line 2 ok
    "H-002;Bob Example;1958-07-01;m;GI;ga68_dotatate_pet;;no;",                  # line 3 ok
    "H-003;Carol Example;01/01/2090;F;lung;tc99m_octreotide;3;no;",             # line 4 birth after today
    "H-004;Dan Example;01/01/1950;M;lung;tc99m_octreotide;2;maybe;",            # line 5 bad yes/no
    "H-001;Alice Example;15/03/1960;F;pancreas;tc99m_octreotide;3;+;2,5",       # line 6 exact duplicate of 2
    ";No Id;01/01/1950;M;lung;tc99m_octreotide;2;no;",                          # line 7 missing patient_id
]

CYCLES = [
    "patient_id;cycle_number;administration_date;activity;activity_unit",
    "H-001;1;10/01/2019;200;mCi",          # line 2: 200 mCi = 7.4 GBq
    "H-001;2;01/03/2019;5550;MBq",         # line 3: 5.55 GBq
    "H-002;1;2019-02-01;7,4;GBq",          # line 4: decimal comma
    "H-002;2;2019-03-20;20;GBq",           # line 5: absurd activity
    "H-999;1;2019-02-01;7,4;GBq",          # line 6: unknown patient
    "H-002;3;2019-05-10;7,4;kBq",          # line 7: unknown unit
    "H-002;4;31/02/2019;7,4;GBq",          # line 8: unparseable date
    "H-001;3;01/01/1950;7,4;GBq",          # line 9: date before birth
]

LABS = [
    "patient_id;sample_date;analyte;value;unit;lln;uln",
    "H-001;05/01/2019;hemoglobin;125;g/L;120;160",        # line 2: 12.5 g/dL, lln 12, uln 16
    "H-001;05/01/2019;creatinine;1,1;mg/dL;0,5;1,1",      # line 3: 97.262 umol/L
    "H-001;05/01/2019;wbc;5400;/mm3;4000;11000",          # line 4: 5.4 x10^9/L
    "H-001;05/02/2019;hemoglobin;30;g/dL;;",              # line 5: Hb > 25 g/dL absurd
    "H-001;05/02/2019;hemoglobin;8;furlongs;;",           # line 6: unknown unit
    "H-002;05/02/2030;platelets;200;10^9/L;;",            # line 7: date after today
    "H-002;05/02/2019;platelets;;10^9/L;;",               # line 8: missing value
    "H-002;05/02/2019;hemoglobin;8,2;mmol/L;;",           # line 9: 13.21 g/dL
]

FOLLOW_UP = [
    "patient_id;last_contact_date;vital_status;death_date",
    "H-001;01/01/2020;alive;",             # line 2 ok
    "H-002;01/06/2018;dead;01/06/2018",    # line 3: death before first administration (2019-02-01)
    "H-001;01/01/2018;alive;",             # line 4: last contact before first administration
]

PERFORMANCE_STATUS = [
    "patient_id;assessment_date;ecog;kps",
    "H-001;02/01/2019;1;80",               # line 2 ok
    "H-001;02/06/2019;1;85",               # line 3: kps not a multiple of 10
]

METASTASES = ["patient_id;site", "H-001;liver", "H-001;Lymph Node", "H-002;moon"]  # line 4 bad site

TUMOUR_ASSESSMENTS = [
    "patient_id;assessment_date;modality;recist_response;sum_of_diameters_mm",
    "H-001;01/05/2019;CT;pr;40,5",         # line 2 ok
    "H-001;01/08/2019;pet-ct;PR;38",       # line 3 bad modality
]

FILES = {
    "patients.csv": PATIENTS,
    "cycles.csv": CYCLES,
    "labs.csv": LABS,
    "follow_up.csv": FOLLOW_UP,
    "performance_status.csv": PERFORMANCE_STATUS,
    "metastases.csv": METASTASES,
    "tumour_assessments.csv": TUMOUR_ASSESSMENTS,
}

# (file, line) -> (field, words that must appear in the reason)
EXPECTED_REJECTIONS = {
    ("patients.csv", 4): ("birth_date", "after today"),
    ("patients.csv", 5): ("diabetes", "yes/no"),
    ("patients.csv", 6): ("(whole row)", "duplicate of line 2"),
    ("patients.csv", 7): ("patient_id", "missing"),
    ("cycles.csv", 5): ("activity", "absurd"),
    ("cycles.csv", 6): ("patient_id", "unknown patient"),
    ("cycles.csv", 7): ("activity_unit", "unknown unit"),
    ("cycles.csv", 8): ("administration_date", "unparseable date"),
    ("cycles.csv", 9): ("administration_date", "before birth"),
    ("labs.csv", 5): ("value", "implausible"),
    ("labs.csv", 6): ("unit", "unknown unit"),
    ("labs.csv", 7): ("sample_date", "after today"),
    ("labs.csv", 8): ("value", "missing"),
    ("follow_up.csv", 3): ("death_date", "death before the first administration"),
    ("follow_up.csv", 4): ("last_contact_date", "last contact before the first administration"),
    ("performance_status.csv", 3): ("kps", "multiple of 10"),
    ("metastases.csv", 4): ("site", "not one of"),
    ("tumour_assessments.csv", 3): ("modality", "not one of"),
}


def write_messy_export(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, lines in FILES.items():
        # BOM and CRLF line ends on every file.
        text = BOM + "\r\n".join(lines) + "\r\n"
        (directory / name).write_bytes(text.encode("utf-8"))
    return directory
