from django import forms

from .models import ASSOCIATION_PREFIX_LENGTH, Lampi, get_parked_user


class AddLampiForm(forms.Form):
    """Claims a parked device by the start of the association code its screen shows."""

    association_code = forms.CharField(
        label="Association code",
        min_length=ASSOCIATION_PREFIX_LENGTH,
        max_length=32,
        help_text=f"The first {ASSOCIATION_PREFIX_LENGTH} characters shown on your LAMPI's screen.",
    )

    def clean_association_code(self) -> str:
        code = self.cleaned_data["association_code"].strip().lower()
        matches = list(Lampi.objects.filter(user=get_parked_user(), association_code__startswith=code)[:2])
        if not matches:
            raise forms.ValidationError("No LAMPI is waiting for that code: check it, or it is already used.")
        if len(matches) > 1:
            raise forms.ValidationError("That code matches more than one LAMPI: type more of it.")
        self.device = matches[0]
        return code
