"""The user's models in a dock: rename, delete, export, import (the Fine-tune dock holds it)."""

from __future__ import annotations

from collections.abc import Callable

from magicgui.widgets import ComboBox, Container, LineEdit, PushButton

from ...core.errors import ColorizeError, InputError
from ...core.library import delete_model, export_model, import_model, rename_model, user_models


class ModelsBox(Container):
    """Controls for the user's model library.

    Parameters
    ----------
    report, error : callable
        ``report(msg)`` shows what was done, ``error(msg)`` what went wrong (both one string).
    renamed, deleted : callable, optional
        ``renamed(old, new)`` and ``deleted(name)`` after a model was renamed or deleted.
    """

    def __init__(self, *, report: Callable, error: Callable, renamed: Callable | None = None,
                 deleted: Callable | None = None):
        super().__init__(labels=True)
        self._report, self._error = report, error
        self._renamed, self._deleted = renamed, deleted
        self.manage = ComboBox(label="Your models", choices=lambda _w=None: list(user_models()),
                               tooltip="Models you fine-tuned or imported")
        self.new_name = LineEdit(label="New name", value="", tooltip="Name for Rename")
        self.rename_btn = PushButton(text="Rename", tooltip="Give the chosen model the new name")
        self.delete_btn = PushButton(text="Delete", tooltip="Delete the chosen model and its checkpoint")
        self.export_btn = PushButton(text="Export...", tooltip="Save the chosen model as one .safetensors file")
        self.import_btn = PushButton(text="Import...", tooltip="Add a model from a .safetensors file")
        # two rows of two: four buttons in one row would make the dock wider than the rest
        rows = [Container(widgets=pair, layout="horizontal", labels=False)
                for pair in ([self.rename_btn, self.delete_btn], [self.export_btn, self.import_btn])]
        self.extend([self.manage, self.new_name, *rows])
        self.rename_btn.changed.connect(lambda *_: self.rename_selected())
        self.delete_btn.changed.connect(lambda *_: self.delete_selected())
        self.export_btn.changed.connect(lambda *_: self.export_selected())
        self.import_btn.changed.connect(lambda *_: self.import_file())

    def refresh(self) -> None:
        """Re-read the model list, keeping the choice where it still exists."""
        current = self.manage.value
        self.manage.reset_choices()
        if current in self.manage.choices:
            self.manage.value = current

    def rename_selected(self, new: str | None = None) -> None:
        """Rename the chosen model to ``new`` (default: the New name field)."""
        old = self.manage.value
        try:
            if old is None:
                raise InputError("Choose one of your models to rename.")
            new = (new or self.new_name.value).strip()
            rename_model(old, new)
        except ColorizeError as exc:
            self._error(str(exc))
            return
        self.manage.value = new
        if self._renamed is not None:
            self._renamed(old, new)
        self._report(f"renamed '{old}' to '{new}'")

    def delete_selected(self, confirm: bool = True) -> None:
        """Delete the chosen model (after a question when ``confirm``)."""
        name = self.manage.value
        if name is None:
            return
        if confirm:
            from qtpy.QtWidgets import QMessageBox

            answer = QMessageBox.question(self.native, "Delete model",
                                          f"Delete the model '{name}' and its checkpoint for good?")
            if answer != QMessageBox.StandardButton.Yes:
                return
        try:
            delete_model(name)
        except ColorizeError as exc:
            self._error(str(exc))
            return
        if self._deleted is not None:
            self._deleted(name)
        self._report(f"deleted '{name}'")

    def export_selected(self, dest: str | None = None) -> None:
        """Export the chosen model to ``dest`` (asks for a file when None)."""
        name = self.manage.value
        if name is None:
            self._error("Choose one of your models to export.")
            return
        if dest is None:
            from qtpy.QtWidgets import QFileDialog

            dest, _ = QFileDialog.getSaveFileName(self.native, "Export model", f"{name}.safetensors",
                                                  "Models (*.safetensors)")
            if not dest:
                return
        try:
            path = export_model(name, dest)
        except (ColorizeError, OSError) as exc:
            self._error(f"Export failed: {exc}")
            return
        self._report(f"exported '{name}' to {path}")

    def import_file(self, path: str | None = None, name: str | None = None) -> None:
        """Import a model file (asks for one when ``path`` is None) under ``name`` or its file name."""
        if path is None:
            from qtpy.QtWidgets import QFileDialog

            path, _ = QFileDialog.getOpenFileName(self.native, "Import model", "", "Models (*.safetensors)")
            if not path:
                return
        try:
            name = import_model(path, name)
        except (ColorizeError, OSError) as exc:
            self._error(str(exc))
            return
        self.manage.value = name
        self._report(f"imported '{name}'")
