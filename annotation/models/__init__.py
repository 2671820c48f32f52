"""Annotation models, by meaning: core.py (languages, annotators, campaigns, items, responses, leases, skips,
judgments), jobs.py (item imports, exports), people.py (invitations, guidelines per language, activity, pay rates),
quality.py (gold standing, qualification, exclusions, adjudication). Everything is importable from here, as before
the split (migrations name `annotation.models.default_flags`)."""

from annotation.models.core import (
    DEFAULT_FLAGS,
    AnnotatorProfile,
    Campaign,
    Item,
    Judgment,
    JudgmentSubmission,
    Language,
    Lease,
    Response,
    Skip,
    Verdict,
    VisibleItemManager,
    default_flags,
)
from annotation.models.jobs import Export, ItemImport
from annotation.models.people import ActivityPing, CampaignGuideline, Invitation, PayRate
from annotation.models.quality import Adjudication, AnnotatorStanding, Exclusion, QualificationResult
from crossfeed.jobs.status import BackgroundJob, JobStatus

__all__ = [
    "ActivityPing", "Adjudication", "AnnotatorProfile", "AnnotatorStanding", "BackgroundJob", "Campaign",
    "CampaignGuideline", "DEFAULT_FLAGS", "Exclusion", "Export", "Invitation", "Item", "ItemImport", "JobStatus",
    "Judgment", "JudgmentSubmission", "Language", "Lease", "PayRate", "QualificationResult", "Response", "Skip",
    "Verdict", "VisibleItemManager", "default_flags",
]
