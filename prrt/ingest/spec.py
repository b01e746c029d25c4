"""The raw export format (CONTRACT section 2) as data: files, columns, value domains.

Validation SQL is generated from these declarations (see ``columns.py``), so a new
column or allowed value is a one-line change here, and ``raw/README.md`` documents it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # text | date | enum | bool | integer | number
    required: bool = False
    values: tuple[str, ...] = ()  # enum: the canonical values
    aliases: dict[str, str] = field(default_factory=dict)  # enum: accepted spelling -> canonical
    upper: bool = False  # enum: compare upper-cased (else lower-cased)
    min: float | None = None
    max: float | None = None
    step: int | None = None  # integer: value must be a multiple (KPS in steps of 10)


@dataclass(frozen=True)
class ExportFile:
    name: str
    columns: tuple[Column, ...]
    # Business key: of two different rows with the same key the later one is rejected.
    key: tuple[str, ...] = ()
    # Whether a later file may not repeat a key either (follow-up files may: they update).
    key_across_files: bool = True

    @property
    def filename(self) -> str:
        return f"{self.name}.csv"

    @property
    def date_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.kind == "date")



PATIENT_ID = Column("patient_id", "text", required=True)

PATIENTS = ExportFile(
    "patients",
    (
        PATIENT_ID,
        Column("full_name", "text"),  # read to be dropped: never stored
        Column("birth_date", "date", required=True),
        Column(
            "sex", "enum", required=True, values=("M", "F"), upper=True,
            aliases={"MALE": "M", "FEMALE": "F"},
        ),
        Column(
            "primary_site", "enum", required=True,
            values=("pancreas", "gi", "lung", "unknown_primary", "other"),
            aliases={"gastrointestinal": "gi", "unknown": "unknown_primary", "cup": "unknown_primary"},
        ),
        Column("tumour_grade", "enum", values=("G1", "G2", "G3"), upper=True),
        Column("ki67_percent", "number", min=0, max=100),
        Column("prior_surgery", "bool"),
        Column("prior_chemotherapy", "bool"),
        Column("prior_radiotherapy", "bool"),
        Column("hypertension", "bool"),
        Column("diabetes", "bool"),
        Column(
            "baseline_imaging", "enum", required=True,
            values=("tc99m_octreotide", "ga68_dotatate_pet"),
        ),
        Column("krenning_score", "integer", min=0, max=4),
        Column("suvmax", "number", min=0, max=500),
    ),
    key=("patient_id",),
)

METASTASES = ExportFile(
    "metastases",
    (
        PATIENT_ID,
        Column(
            "site", "enum", required=True,
            values=("liver", "lymph_node", "bone", "kidney", "uterus", "skin", "lung", "peritoneum", "other"),
            aliases={"lymph node": "lymph_node", "ln": "lymph_node"},
        ),
    ),
)

# Contract section 3: an activity above 15 GBq in one administration is absurd. Below 0.5 GBq
# (a fifteenth of the standard 7.4 GBq; reduced cycles are 3.7 GBq) it is a unit or typing error.
MAX_ACTIVITY_GBQ_PER_CYCLE = 15.0
MIN_ACTIVITY_GBQ_PER_CYCLE = 0.5

CYCLES = ExportFile(
    "cycles",
    (
        PATIENT_ID,
        Column("cycle_number", "integer", required=True, min=1, max=50),
        Column("administration_date", "date", required=True),
        Column("activity", "number", required=True),  # range checked after unit conversion
        Column("activity_unit", "text", required=True),
        Column("amino_acid_infusion", "bool"),
    ),
    key=("patient_id", "cycle_number"),
)

LAB_ANALYTES = (
    "hemoglobin", "wbc", "platelets", "neutrophils", "lymphocytes", "creatinine",
    "ast", "alt", "bilirubin", "albumin", "chromogranin_a",
)

LABS = ExportFile(
    "labs",
    (
        PATIENT_ID,
        Column("sample_date", "date", required=True),
        Column(
            "analyte", "enum", required=True, values=LAB_ANALYTES,
            aliases={"haemoglobin": "hemoglobin", "hb": "hemoglobin", "plt": "platelets",
                     "leukocytes": "wbc", "cga": "chromogranin_a"},
        ),
        Column("value", "number", required=True),  # range checked after unit conversion
        Column("unit", "text", required=True),
        Column("lln", "number"),
        Column("uln", "number"),
    ),
)

PERFORMANCE_STATUS = ExportFile(
    "performance_status",
    (
        PATIENT_ID,
        Column("assessment_date", "date", required=True),
        Column("ecog", "integer", min=0, max=5),
        Column("kps", "integer", min=0, max=100, step=10),
    ),
)

TUMOUR_ASSESSMENTS = ExportFile(
    "tumour_assessments",
    (
        PATIENT_ID,
        Column("assessment_date", "date", required=True),
        Column(
            "modality", "enum", required=True, values=("ct", "mri", "ga68_dotatate_pet"),
            aliases={"mr": "mri", "ga68_pet": "ga68_dotatate_pet"},
        ),
        Column("recist_response", "enum", required=True, values=("CR", "PR", "SD", "PD", "NE"), upper=True),
        Column("sum_of_diameters_mm", "number", min=0, max=2000),
    ),
)

FOLLOW_UP = ExportFile(
    "follow_up",
    (
        PATIENT_ID,
        Column("last_contact_date", "date", required=True),
        Column("vital_status", "enum", required=True, values=("alive", "dead"),
               aliases={"deceased": "dead", "died": "dead", "living": "alive"}),
        Column("death_date", "date"),
    ),
    key=("patient_id",),
    key_across_files=False,  # a later follow-up file brings newer contact or a death
)

# Load order matters: children are checked against the accepted patients, follow-up
# against the accepted cycles (death before the first administration).
EXPORT_FILES: tuple[ExportFile, ...] = (
    PATIENTS, METASTASES, CYCLES, LABS, PERFORMANCE_STATUS, TUMOUR_ASSESSMENTS, FOLLOW_UP,
)
