"""Channel registry: the names the CLI, API and database use, mapped to their classes.

Explicit on purpose (no entry-point discovery): adding a channel is one line here. The
modules are imported when the registry is asked for, never at package import.
"""

from __future__ import annotations

from channels.base import Channel


def registry() -> dict[str, type[Channel]]:
    """Every channel this build knows, by registry name (../shared/DESIGN.md)."""
    from channels.douyin import DouyinChannel
    from channels.rss import RssChannel
    from channels.webhook import WebhookChannel
    from channels.website import WebsiteChannel
    from channels.wechat_channels import WechatChannelsChannel
    from channels.wechat_mp import WechatMpChannel
    from channels.weibo import WeiboChannel
    from channels.wordpress import WordpressChannel

    classes = (WebsiteChannel, RssChannel, WeiboChannel, DouyinChannel, WechatMpChannel, WechatChannelsChannel, WordpressChannel, WebhookChannel)
    return {cls.name: cls for cls in classes}


def short_names() -> dict[str, str]:
    """Registry name → the short Chinese name tables, badges and reports show (one source)."""
    return {name: cls.short_zh or cls.title_zh or name for name, cls in registry().items()}


def get_channel(name: str) -> Channel:
    """An instance of the channel registered as `name`; KeyError names the known ones."""
    known = registry()
    try:
        return known[name]()
    except KeyError:
        raise KeyError(f"unknown channel {name!r}; known: {', '.join(sorted(known))}") from None
