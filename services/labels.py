"""Campaign labels: the template a campaign puts at the start of every text, and its rendering.

The seeds put a fixed label before every piece, e.g. 黄山市黄山区30项民生实事之{project}民生实事
(004) or 群众满意度提升行动之{theme}篇 (000). A template may name the story's fields `theme`,
`project` and `unit`, in Python `str.format` braces; nothing else is substituted, so a template is
checked when the campaign is saved, and a story missing a field the template needs is refused.
"""

from __future__ import annotations

from string import Formatter

from services.errors import ValidationError

VARIABLES = {"theme": "主题", "project": "项目", "unit": "责任单位"}
LABEL_MAX = 200


def template_fields(template: str) -> list[str]:
    """The variables a template names, in order; a malformed or unknown one is a ValidationError."""
    try:
        parsed = list(Formatter().parse(template))
    except ValueError as exc:
        raise ValidationError(f"label template is malformed: {exc}", "活动标签模板格式有误（花括号不成对）") from None
    names = []
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in VARIABLES or spec or conversion:
            known = ", ".join("{" + v + "}" for v in VARIABLES)
            raise ValidationError(f"label template may use only {known}; got {{{name}}}",
                                  f"活动标签模板只能使用 {known}，不认识 {{{name}}}")
        names.append(name)
    return names


def render_label(template: str, *, theme: str = "", project: str = "", unit: str = "") -> str:
    """The label for a story with these fields; a field the template needs but the story lacks is refused."""
    values = {"theme": theme.strip(), "project": project.strip(), "unit": unit.strip()}
    missing = [n for n in template_fields(template) if not values[n]]
    if missing:
        names_zh = "、".join(VARIABLES[n] for n in dict.fromkeys(missing))
        raise ValidationError(f"the campaign label needs the story's {', '.join(dict.fromkeys(missing))}",
                              f"活动标签需要填写稿件的{names_zh}")
    label = template.format(**values).strip()
    if len(label) > LABEL_MAX:
        raise ValidationError(f"label is {len(label)} characters; the limit is {LABEL_MAX}",
                              f"标签共 {len(label)} 字，超过上限 {LABEL_MAX} 字")
    return label
