"""Training API shapes (ARCHITECTURE.md, REST API v1). Input serializers check types and look up ids; the rules
(which export fits which kind, parameter validation) live in training/services/runs.py."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotation.models import Export
from instructions.models import InstructionExport
from training import selectors
from training.models import BaseModel, ChatTemplateName, ModelVersion, TrainingRun


class BaseModelInputSerializer(serializers.Serializer):
    # Blank passes here so that the service's message (what a path must be) is the one the client reads.
    name = serializers.CharField(max_length=200, allow_blank=True, trim_whitespace=False)
    path = serializers.CharField(max_length=500, allow_blank=True)
    chat_template = serializers.CharField(required=False, default="", allow_blank=True, max_length=100_000,
                                          trim_whitespace=False)
    chat_template_name = serializers.ChoiceField(choices=ChatTemplateName.values, required=False,
                                                 default=ChatTemplateName.AUTO)
    notes = serializers.CharField(required=False, default="", allow_blank=True, max_length=10_000)


class ModelVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelVersion
        fields = ["id", "name", "kind", "parent", "run", "adapter_path", "export", "dataset_sha256", "metrics",
                  "created_at"]


class BaseModelSerializer(serializers.ModelSerializer):
    versions = ModelVersionSerializer(many=True, read_only=True)

    class Meta:
        model = BaseModel
        fields = ["id", "name", "path", "chat_template_name", "chat_template", "notes", "created_at", "versions"]


class SFTDataSerializer(serializers.Serializer):
    """Exactly one of: a finished SFT export, a finished instruction set export (instructions/services/exports.py),
    or a JSONL file on the server (e.g. from training-runs/uploads/)."""

    export = serializers.PrimaryKeyRelatedField(queryset=Export.objects.all(), required=False)
    instruction_export = serializers.PrimaryKeyRelatedField(queryset=InstructionExport.objects.all(), required=False,
                                                            help_text="an instruction set's SFT export "
                                                                      "(POST instruction-sets/{id}/exports/)")
    file = serializers.CharField(required=False, max_length=500)

    def validate(self, attrs: dict) -> dict:
        if len(attrs) != 1:
            raise serializers.ValidationError('give one of {"export": <id>}, {"instruction_export": <id>} or '
                                              '{"file": "<server path>"}')
        return attrs


# Inline in the schema: a named enum component "KindEnum" would collide with the exports' "kind".
@extend_schema_field({"type": "string", "enum": TrainingRun.Kind.values})
class RunKindField(serializers.ChoiceField):
    pass


class TrainingRunInputSerializer(serializers.Serializer):
    kind = RunKindField(choices=TrainingRun.Kind.values)
    base_model = serializers.PrimaryKeyRelatedField(queryset=BaseModel.objects.all())
    start_version = serializers.PrimaryKeyRelatedField(queryset=ModelVersion.objects.all(), required=False,
                                                       allow_null=True, default=None)
    export = serializers.PrimaryKeyRelatedField(queryset=Export.objects.all(), required=False, allow_null=True,
                                                default=None)
    sft_data = SFTDataSerializer(required=False, allow_null=True, default=None)
    params = serializers.JSONField(required=False, default=dict)
    num_processes = serializers.IntegerField(required=False, default=1)
    seed = serializers.IntegerField(required=False, default=42)

    def service_arguments(self) -> dict:
        """The keyword arguments of training_run_create."""
        data = dict(self.validated_data)
        sft_data = data.pop("sft_data") or {}
        data["sft_export"] = sft_data.get("export")
        data["sft_dataset"] = sft_data.get("instruction_export")
        data["sft_file"] = sft_data.get("file", "")
        return data


class RunCreatedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()


class ProgressSerializer(serializers.Serializer):
    step = serializers.IntegerField()
    total = serializers.IntegerField()
    eta_seconds = serializers.IntegerField(allow_null=True)


class MetricSerializer(serializers.Serializer):
    stage = serializers.CharField()
    step = serializers.IntegerField()
    event = serializers.CharField()
    values = serializers.DictField()


class TrainingRunSerializer(serializers.ModelSerializer):
    """A run without its metrics: for lists."""

    # Plain strings, as in the exports' serializer: choice fields would add enum components whose names collide.
    kind = serializers.CharField()
    status = serializers.CharField()
    progress = serializers.SerializerMethodField()
    model_version = serializers.SerializerMethodField()
    versions = ModelVersionSerializer(many=True, read_only=True)
    created_by = serializers.CharField(source="created_by.username", default=None)

    class Meta:
        model = TrainingRun
        fields = ["id", "kind", "status", "stage", "progress", "base_model", "start_version", "export",
                  "sft_export", "sft_dataset", "sft_file", "params", "num_processes", "seed", "model_version",
                  "versions", "error", "output_dir", "attempts", "created_by", "created_at", "started_at",
                  "finished_at"]

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, run: TrainingRun) -> dict:
        return {"step": run.step, "total": run.total_steps, "eta_seconds": run.eta_seconds}

    def get_model_version(self, run: TrainingRun) -> int | None:
        # The version the run ends with: DPO's for sft_dpo.
        version = selectors.final_version(run)
        return version.id if version else None


class TrainingRunDetailSerializer(TrainingRunSerializer):
    metrics = serializers.SerializerMethodField()

    class Meta(TrainingRunSerializer.Meta):
        fields = [*TrainingRunSerializer.Meta.fields, "metrics", "log_tail", "resolved"]

    @extend_schema_field(MetricSerializer(many=True))
    def get_metrics(self, run: TrainingRun) -> list[dict]:
        return [{"stage": m.stage, "step": m.step, "event": m.event, "values": m.values}
                for m in selectors.run_log_metrics(run)]


class SFTUploadSerializer(serializers.Serializer):
    path = serializers.CharField()
    rows = serializers.IntegerField()
