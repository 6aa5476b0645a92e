/* The LINE-like simulator page: renders LINE message JSON as a chat and sends taps and words back as webhook-like events. */
"use strict";

(() => {
  // The API sits under the page's own path, so the page keeps working when the app is mounted under a prefix.
  const API = `${location.pathname.replace(/\/+$/, "")}/api`;
  const POLL_MS = 2000;
  const TIME_ZONE = "Asia/Tokyo";
  const STORE = {
    user: "dxdesk.simulator.user",
    menuOpen: "dxdesk.simulator.menuOpen",
  };
  const NEW_USER = "__new__";
  const SAMPLE_STICKER = { type: "sticker", packageId: "446", stickerId: "1988" };

  // LINE's Flex Message keywords, in CSS pixels as LINE's own Flex Message Simulator draws them.
  const TEXT_SIZE = { xxs: 11, xs: 13, sm: 14, md: 16, lg: 19, xl: 22, xxl: 29, "3xl": 35, "4xl": 48, "5xl": 74 };
  const SPACING = { none: 0, xs: 2, sm: 4, md: 8, lg: 12, xl: 16, xxl: 20 };
  const IMAGE_SIZE = {
    xxs: 40, xs: 60, sm: 80, md: 100, lg: 120, xl: 140, xxl: 160, "3xl": 180, "4xl": 200, "5xl": 220, full: "100%",
  };
  const BUBBLE_WIDTH = { nano: 120, micro: 160, deca: 220, hecto: 241, kilo: 260, mega: 300, giga: 386 };
  const BORDER_WIDTH = { none: 0, light: 0.5, normal: 1, medium: 2, "semi-bold": 3, bold: 4 };
  const ALIGN = { start: "flex-start", center: "center", end: "flex-end", top: "flex-start", bottom: "flex-end" };

  const ICON_PATHS = {
    consult: "M4 5h16v11H8l-4 4z M8 9h8 M8 12h5",
    bookings: "M4 6h16v14H4z M4 10h16 M8 3v5 M16 3v5 M8 14h3v3H8z",
    seminars: "M3 4h18v11H3z M12 15v5 M8 20h8 M7 11l3-3 3 2 4-4",
    faq: "M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z M9.5 9a2.5 2.5 0 1 1 3.5 2.3c-.6.3-1 .9-1 1.6V14 M12 17v.5",
    popup: "M12 21s-7-6.2-7-11a7 7 0 0 1 14 0c0 4.8-7 11-7 11z M12 12.5a2.5 2.5 0 1 0 0-5 2.5 2.5 0 0 0 0 5z",
    staff: "M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8z M4 21c0-4 3.6-6.5 8-6.5s8 2.5 8 6.5",
    default: "M5 5h14v14H5z",
  };

  const $ = (selector) => document.querySelector(selector);
  const ui = {
    chat: $("#chat"),
    tail: $("#chat-tail"),
    pending: $("#pending"),
    typing: $("#typing"),
    connection: $("#connection"),
    quickReplies: $("#quick-replies"),
    composer: $("#composer"),
    input: $("#message-input"),
    sendButton: $("#send-button"),
    stickerButton: $("#sticker-button"),
    userSelect: $("#user-select"),
    followButton: $("#follow-button"),
    menuToggle: $("#richmenu-toggle"),
    menuGrid: $("#richmenu-grid"),
    picker: $("#picker"),
  };
  const accountName = document.body.dataset.programName || "";

  const state = {
    user: null,
    generation: 0, // bumped on every user switch so answers meant for the previous user are dropped
    seen: new Set(),
    lastId: 0,
    lastDay: null,
    lastSender: null,
    inflight: 0,
    quickItems: null,
    queue: Promise.resolve(), // sends go out one at a time, in the order the user made them
  };

  // ---- DOM helpers: text only ever goes in through textContent or text nodes, never as HTML.

  function h(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "className") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "style") Object.assign(node.style, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    node.append(...children.flat().filter((child) => child !== null && child !== undefined));
    return node;
  }

  function svgIcon(path, className) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("class", className);
    const shape = document.createElementNS(ns, "path");
    shape.setAttribute("d", path);
    svg.append(shape);
    return svg;
  }

  function safeUrl(value, protocols = ["http:", "https:", "tel:", "mailto:"]) {
    if (typeof value !== "string" || !value) return null;
    try {
      const url = new URL(value, location.href);
      return protocols.includes(url.protocol) ? url.href : null;
    } catch {
      return null;
    }
  }

  const imageUrl = (value) => safeUrl(value, ["http:", "https:"]);

  // An image that cannot load leaves its frame's background colour rather than a broken-image icon.
  function picture(src, props = {}) {
    return h("img", { ...props, src, onerror: (event) => { event.target.style.visibility = "hidden"; } });
  }

  function linkify(text) {
    const fragment = document.createDocumentFragment();
    let rest = 0;
    for (const match of text.matchAll(/https?:\/\/[^\s<>"'「」『』（）、。]+/g)) {
      // A sentence's closing punctuation is not part of the address it ends with.
      const address = match[0].replace(/[.,!?;:)\]]+$/, "");
      const href = safeUrl(address);
      if (!href) continue;
      fragment.append(document.createTextNode(text.slice(rest, match.index)));
      fragment.append(h("a", { href, target: "_blank", rel: "noopener noreferrer" }, address));
      rest = match.index + address.length;
    }
    fragment.append(document.createTextNode(text.slice(rest)));
    return fragment;
  }

  // ---- Time, the Japanese way and always in Asia/Tokyo.

  const timeFormat = new Intl.DateTimeFormat("ja-JP", {
    timeZone: TIME_ZONE, hour: "2-digit", minute: "2-digit", hour12: false,
  });
  const dayFormat = new Intl.DateTimeFormat("ja-JP", {
    timeZone: TIME_ZONE, year: "numeric", month: "numeric", day: "numeric", weekday: "short",
  });

  function parseTime(value) {
    const date = value ? new Date(value) : new Date();
    return Number.isNaN(date.getTime()) ? new Date() : date;
  }

  function dayLabel(date) {
    const parts = Object.fromEntries(dayFormat.formatToParts(date).map((part) => [part.type, part.value]));
    return { key: `${parts.year}-${parts.month}-${parts.day}`, label: `${parts.month}月${parts.day}日(${parts.weekday})` };
  }

  function pickedLabel(mode, value) {
    const [datePart, timePart] = mode === "time" ? [null, value] : value.split("T");
    if (!datePart) return timePart;
    const [year, month, day] = datePart.split("-").map(Number);
    const weekday = "日月火水木金土"[new Date(Date.UTC(year, month - 1, day)).getUTCDay()];
    const label = `${month}月${day}日(${weekday})`;
    return timePart ? `${label} ${timePart}` : label;
  }

  // ---- Talking to the server.

  async function api(path, options = {}) {
    let response;
    try {
      response = await fetch(`${API}/${path}`, {
        ...options,
        headers: { Accept: "application/json", "Content-Type": "application/json" },
      });
    } catch {
      throw new Error("サーバーに接続できませんでした。ネットワークとサーバーの状態をご確認ください。");
    }
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    if (!response.ok) {
      throw new Error((body && body.error) || `サーバーでエラーが発生しました（${response.status}）。`);
    }
    return body || {};
  }

  function send(event, { typed = null } = {}) {
    const generation = state.generation;
    const user = state.user;
    const chips = state.quickItems;
    hideQuickReplies();
    const pending = renderPending(event);
    state.inflight += 1;
    ui.typing.hidden = false;
    scrollToBottom(true);
    state.queue = state.queue.then(async () => {
      try {
        const body = await api("send", { method: "POST", body: JSON.stringify({ user, event }) });
        pending?.remove();
        if (generation === state.generation) renderBatch(body.messages || []);
      } catch (error) {
        pending?.remove();
        if (generation !== state.generation) return;
        systemLine(`送信できませんでした。${error.message}`, "error");
        if (typed !== null) restoreTyped(typed);
        if (chips && !state.quickItems) showQuickReplies(chips);
      } finally {
        if (generation === state.generation) {
          state.inflight -= 1;
          ui.typing.hidden = state.inflight === 0;
          scrollToBottom(false);
        }
      }
    });
  }

  const sendText = (text, options) => send({ type: "message", message: { type: "text", text } }, options);

  function sendPostback(data, displayText, params) {
    const event = { type: "postback", postback: { data } };
    if (params) event.postback.params = params;
    if (displayText) event.displayText = displayText;
    send(event);
  }

  function restoreTyped(text) {
    const now = ui.input.value;
    ui.input.value = now ? `${text}\n${now}` : text;
    updateComposer();
    ui.input.focus();
  }

  // ---- Actions, as LINE defines them; the same code serves chips, buttons and rich menu.

  function perform(action) {
    switch (action.type) {
      case "message":
        sendText(String(action.text ?? action.label ?? ""));
        break;
      case "postback":
        if (action.inputOption === "openKeyboard") {
          if (action.fillInText) ui.input.value = action.fillInText;
          updateComposer();
          ui.input.focus();
        }
        sendPostback(String(action.data ?? ""), action.displayText ?? action.text ?? null);
        break;
      case "datetimepicker":
        openPicker(action);
        break;
      case "uri": {
        const href = safeUrl(action.uri);
        if (href) window.open(href, "_blank", "noopener,noreferrer");
        else systemLine("このリンクは開けません。", "error");
        break;
      }
      case "clipboard":
        navigator.clipboard?.writeText(String(action.clipboardText ?? "")).then(
          () => systemLine("コピーしました。"),
          () => systemLine("コピーできませんでした。", "error"),
        );
        break;
      default:
        systemLine(`「${action.label ?? action.type}」はシミュレーターでは使えない操作です。`);
    }
  }

  // A uri action is a real link; everything else is a real button.
  function actionControl(action, className, content) {
    if (action && action.type === "uri") {
      const href = safeUrl(action.uri);
      if (href) return h("a", { className, href, target: "_blank", rel: "noopener noreferrer" }, content);
    }
    return h("button", {
      type: "button",
      className,
      disabled: !action || (action.type === "uri"),
      onclick: () => perform(action),
    }, content);
  }

  function openPicker(action) {
    const mode = ["date", "time"].includes(action.mode) ? action.mode : "datetime";
    const normalize = (value) => (typeof value === "string" ? value.replace("t", "T") : null);
    const input = h("input", {
      id: "picker-input",
      type: mode === "datetime" ? "datetime-local" : mode,
      required: true,
      min: normalize(action.min),
      max: normalize(action.max),
    });
    input.value = normalize(action.initial) || "";
    const title = action.label || { datetime: "日時を選択", date: "日付を選択", time: "時刻を選択" }[mode];
    const form = h("form", { method: "dialog", className: "picker-form" },
      h("label", { className: "picker-title", for: "picker-input", text: title }),
      input,
      h("div", { className: "picker-actions" },
        h("button", { type: "button", className: "picker-cancel", text: "キャンセル", onclick: () => ui.picker.close() }),
        h("button", { type: "submit", className: "picker-ok", text: "決定" })));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!input.reportValidity()) return;
      ui.picker.close();
      sendPostback(String(action.data ?? ""), pickedLabel(mode, input.value), { [mode]: input.value });
    });
    ui.picker.replaceChildren(form);
    ui.picker.showModal();
    input.focus();
  }

  // ---- Quick replies: they belong to the latest message and go away once anything new is said.

  function hideQuickReplies() {
    state.quickItems = null;
    ui.quickReplies.replaceChildren();
    ui.quickReplies.hidden = true;
  }

  function showQuickReplies(items) {
    const chips = items.filter((item) => item && item.action).map((item) => {
      const icon = imageUrl(item.imageUrl) ? picture(imageUrl(item.imageUrl), { alt: "", className: "chip-icon" }) : null;
      return h("button", {
        type: "button",
        className: "chip",
        onclick: () => perform(item.action),
      }, icon, item.action.label ?? item.action.text ?? "");
    });
    state.quickItems = chips.length ? items : null;
    ui.quickReplies.replaceChildren(...chips);
    ui.quickReplies.hidden = chips.length === 0;
    ui.quickReplies.scrollLeft = 0;
  }

  // ---- The chat log.

  function nearBottom() {
    return ui.chat.scrollHeight - ui.chat.scrollTop - ui.chat.clientHeight < 120;
  }

  function scrollToBottom(force) {
    if (force || nearBottom()) ui.chat.scrollTop = ui.chat.scrollHeight;
  }

  function place(node) {
    ui.chat.insertBefore(node, ui.tail);
  }

  function systemLine(text, kind = "info") {
    const stick = nearBottom();
    place(h("p", { className: `system-line system-${kind}`, role: kind === "error" ? "alert" : null },
      h("span", { text })));
    state.lastSender = null;
    scrollToBottom(stick);
  }

  function dateSeparator(date) {
    const { key, label } = dayLabel(date);
    if (key === state.lastDay) return;
    state.lastDay = key;
    const today = dayLabel(new Date()).key === key;
    place(h("p", { className: "date-separator" }, h("span", { text: today ? `今日 ${label}` : label })));
    state.lastSender = null;
  }

  function renderBatch(messages) {
    const fresh = messages
      .filter((item) => item && Number.isInteger(item.id) && !state.seen.has(item.id))
      .sort((a, b) => a.id - b.id);
    if (fresh.length === 0) return;
    const stick = nearBottom();
    for (const item of fresh) {
      state.seen.add(item.id);
      state.lastId = Math.max(state.lastId, item.id);
      renderItem(item);
    }
    const last = fresh[fresh.length - 1];
    const quickReply = last.direction === "out" && last.message && last.message.quickReply;
    if (quickReply && Array.isArray(quickReply.items)) showQuickReplies(quickReply.items);
    else hideQuickReplies();
    scrollToBottom(stick || fresh.some((item) => item.direction === "in"));
  }

  function renderItem(item) {
    const at = parseTime(item.at);
    const message = item.message || {};
    if (item.direction === "in" && (message.type === "follow" || message.type === "unfollow")) {
      systemLine(message.type === "follow" ? `${accountName}を友だち追加しました` : `${accountName}をブロックしました`);
      return;
    }
    const content = item.direction === "out" ? botContent(message) : userContent(message);
    if (!content) return;
    dateSeparator(at);
    place(item.direction === "out" ? botRow(content, at) : userRow(content, at, "既読"));
  }

  function meta(lines) {
    return h("div", { className: "meta" }, lines.map((line) => h("span", { text: line })));
  }

  function userRow(content, at, status) {
    const first = state.lastSender !== "in";
    state.lastSender = "in";
    return h("div", { className: `row row-user${first ? " is-first" : ""}` },
      h("span", { className: "visually-hidden", text: "あなた:" }),
      meta([status, at ? timeFormat.format(at) : null].filter(Boolean)),
      content);
  }

  function botRow(content, at) {
    const first = state.lastSender !== "out";
    state.lastSender = "out";
    const wide = content.classList.contains("is-wide");
    return h("div", { className: `row row-bot${first ? " is-first" : ""}${wide ? " is-wide" : ""}` },
      first ? h("div", { className: "avatar", "aria-hidden": "true" }, svgIcon(ICON_PATHS.consult, "avatar-icon")) : null,
      h("div", { className: "bot-column" },
        first ? h("p", { className: "sender", text: accountName }) : h("span", { className: "visually-hidden", text: `${accountName}:` }),
        h("div", { className: "bot-line" }, content, meta([timeFormat.format(at)]))));
  }

  function textBubble(text, who) {
    return h("div", { className: `bubble bubble-${who}` }, linkify(String(text)));
  }

  function sticker() {
    return h("div", { className: "sticker", role: "img", "aria-label": "スタンプ" },
      svgIcon("M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z M8.5 14.5c1.8 2 5.2 2 7 0 M9 9.5v1 M15 9.5v1", "sticker-face"));
  }

  function userContent(message) {
    switch (message.type) {
      case "text":
        return textBubble(message.text ?? "", "user");
      case "postback":
        return message.displayText ? textBubble(message.displayText, "user") : null;
      case "sticker":
        return sticker();
      default:
        return null;
    }
  }

  function renderPending(event) {
    let content = null;
    if (event.type === "message") content = userContent(event.message);
    else if (event.type === "postback") content = userContent({ type: "postback", displayText: event.displayText });
    if (!content) return null;
    const sender = state.lastSender; // the pending row sits outside the log, so it must not change how the log groups
    const row = userRow(content, null, "送信中");
    state.lastSender = sender;
    row.classList.add("is-pending");
    ui.pending.append(row);
    return row;
  }

  function botContent(message) {
    switch (message.type) {
      case "text":
        return textBubble(message.text ?? "", "bot");
      case "sticker":
        return sticker();
      case "image": {
        const src = imageUrl(message.previewImageUrl) || imageUrl(message.originalContentUrl);
        const full = imageUrl(message.originalContentUrl) || src;
        return src ? h("a", { className: "image-message", href: full, target: "_blank", rel: "noopener noreferrer" },
          picture(src, { alt: "画像" })) : null;
      }
      case "flex":
        return flexMessage(message.contents, message.altText);
      case "template":
        return templateMessage(message.template, message.altText);
      default:
        return textBubble(message.altText || `（このメッセージ（${message.type}）はシミュレーターでは表示できません）`, "bot");
    }
  }

  // ---- Flex Message: bubbles and carousels of bubbles, drawn with flexbox the way LINE lays them out.

  function flexMessage(contents, altText) {
    if (!contents) return textBubble(altText || "", "bot");
    if (contents.type === "carousel") {
      return h("div", { className: "carousel is-wide", role: "group", "aria-label": altText || "カルーセル" },
        (contents.contents || []).map((bubble) => flexBubble(bubble)));
    }
    return flexBubble(contents);
  }

  function flexBubble(bubble) {
    const styles = bubble.styles || {};
    const card = h("div", {
      className: "flex-bubble",
      style: { maxWidth: `${BUBBLE_WIDTH[bubble.size] ?? BUBBLE_WIDTH.mega}px` },
      dir: bubble.direction === "rtl" ? "rtl" : null,
    });
    for (const block of ["header", "hero", "body", "footer"]) {
      const component = bubble[block];
      if (!component) continue;
      const blockStyle = styles[block] || {};
      const section = h("div", { className: `flex-block flex-${block}` });
      if (blockStyle.backgroundColor) section.style.backgroundColor = blockStyle.backgroundColor;
      if (blockStyle.separator) {
        section.style.borderTop = `1px solid ${blockStyle.separatorColor || "#e6e6e6"}`;
      }
      section.append(flexComponent(component, "vertical", null));
      card.append(section);
    }
    return card;
  }

  const space = (value) => (value in SPACING ? `${SPACING[value]}px` : value);

  // LINE's defaults: fillers share out free space, icons and spacers keep their size, others grow only across a row.
  function defaultFlex(type, parentLayout) {
    if (type === "filler") return 1;
    if (type === "icon" || type === "spacer") return 0;
    return parentLayout === "vertical" ? 0 : 1;
  }

  function commonStyle(node, component, parentLayout, spacing) {
    const along = parentLayout === "vertical" ? "marginTop" : "marginInlineStart";
    const margin = component.margin ?? spacing;
    if (margin) node.style[along] = space(margin);
    const grow = component.flex ?? defaultFlex(component.type, parentLayout);
    node.style.flex = grow > 0 ? `${grow} ${grow} 0` : "0 1 auto";
    if (component.position === "absolute") node.style.position = "absolute";
    for (const [key, css] of [["offsetTop", "top"], ["offsetBottom", "bottom"], ["offsetStart", "insetInlineStart"], ["offsetEnd", "insetInlineEnd"]]) {
      if (component[key]) node.style[css] = space(component[key]);
    }
    if (component.gravity && parentLayout !== "vertical") node.style.alignSelf = ALIGN[component.gravity];
    return node;
  }

  function flexComponent(component, parentLayout, spacing) {
    const render = {
      box: flexBox, text: flexText, button: flexButton, image: flexImage, icon: flexIcon,
      separator: flexSeparator, filler: flexFiller, spacer: flexSpacer, video: flexVideo,
    }[component && component.type];
    if (!render) return document.createTextNode("");
    return commonStyle(render(component, parentLayout), component, parentLayout, spacing);
  }

  function flexBox(box) {
    const layout = ["horizontal", "baseline"].includes(box.layout) ? box.layout : "vertical";
    const node = h("div", { className: `flex-box flex-${layout}` });
    const style = node.style;
    for (const [key, css] of [["paddingAll", "padding"], ["paddingTop", "paddingTop"], ["paddingBottom", "paddingBottom"],
      ["paddingStart", "paddingInlineStart"], ["paddingEnd", "paddingInlineEnd"]]) {
      if (box[key]) style[css] = space(box[key]);
    }
    if (box.backgroundColor) style.backgroundColor = box.backgroundColor;
    if (box.background && box.background.type === "linearGradient") {
      style.backgroundImage = `linear-gradient(${box.background.angle || "0deg"}, ${box.background.startColor}, ${box.background.endColor})`;
    }
    if (box.borderColor) style.borderColor = box.borderColor;
    if (box.borderWidth || box.borderColor) {
      const width = box.borderWidth ?? "normal";
      style.borderStyle = "solid";
      style.borderWidth = width in BORDER_WIDTH ? `${BORDER_WIDTH[width]}px` : width;
    }
    if (box.cornerRadius) style.borderRadius = box.cornerRadius in SPACING ? `${SPACING[box.cornerRadius]}px` : box.cornerRadius;
    for (const key of ["width", "height", "maxWidth", "maxHeight"]) if (box[key]) style[key] = box[key];
    if (box.justifyContent) style.justifyContent = box.justifyContent;
    if (box.alignItems && layout !== "baseline") style.alignItems = box.alignItems;
    (box.contents || []).forEach((child, index) => {
      const gap = index > 0 && child.type !== "filler" ? box.spacing : null;
      node.append(flexComponent(child, layout, gap));
    });
    if (box.action) makeActionable(node, box.action);
    return node;
  }

  // Boxes and texts with an action hold block content, so they take the button role rather than the element.
  function makeActionable(node, action) {
    if (action.type === "uri" && !safeUrl(action.uri)) return;
    node.classList.add("is-actionable");
    node.setAttribute("role", action.type === "uri" ? "link" : "button");
    node.setAttribute("tabindex", "0");
    if (action.label) node.setAttribute("aria-label", action.label);
    node.addEventListener("click", () => perform(action));
    node.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        perform(action);
      }
    });
  }

  function textStyle(node, part) {
    if (part.size) node.style.fontSize = part.size in TEXT_SIZE ? `${TEXT_SIZE[part.size]}px` : part.size;
    if (part.weight === "bold") node.style.fontWeight = "700";
    if (part.color) node.style.color = part.color;
    if (part.style === "italic") node.style.fontStyle = "italic";
    if (part.decoration && part.decoration !== "none") node.style.textDecoration = part.decoration;
  }

  function flexText(text) {
    const node = h("div", { className: `flex-text${text.wrap ? " is-wrapped" : ""}` });
    if (Array.isArray(text.contents) && text.contents.length) {
      for (const span of text.contents) {
        const part = h("span", { text: span.text ?? "" });
        textStyle(part, span);
        node.append(part);
      }
    } else {
      node.textContent = text.text ?? "";
    }
    textStyle(node, text);
    if (text.align) node.style.textAlign = text.align === "end" ? "end" : text.align === "center" ? "center" : "start";
    if (text.lineSpacing) node.style.lineHeight = `calc(1.4em + ${text.lineSpacing})`;
    if (text.wrap && text.maxLines > 0) {
      node.classList.add("is-clamped");
      node.style.webkitLineClamp = String(text.maxLines);
    }
    if (text.action) makeActionable(node, text.action);
    return node;
  }

  function flexButton(button) {
    const style = ["primary", "secondary"].includes(button.style) ? button.style : "link";
    const action = button.action;
    const node = actionControl(action, `flex-button flex-button-${style} flex-button-${button.height === "sm" ? "sm" : "md"}`,
      action?.label ?? "");
    if (button.color) node.style[style === "link" ? "color" : "backgroundColor"] = button.color;
    return h("div", { className: "flex-button-holder" }, node);
  }

  function flexImage(image) {
    const size = IMAGE_SIZE[image.size ?? "md"] ?? image.size;
    const src = imageUrl(image.url);
    const frame = h("div", { className: "flex-image" });
    frame.style.width = typeof size === "number" ? `${size}px` : size;
    frame.style.maxWidth = "100%";
    frame.style.aspectRatio = (image.aspectRatio || "1:1").replace(":", " / ");
    if (image.backgroundColor) frame.style.backgroundColor = image.backgroundColor;
    frame.style.alignSelf = ALIGN[image.align ?? "center"];
    if (src) {
      frame.append(picture(src, {
        alt: image.altText || "", loading: "lazy",
        style: { objectFit: image.aspectMode === "cover" ? "cover" : "contain" },
      }));
    }
    if (image.action) makeActionable(frame, image.action);
    // An image sits inside its own centring wrapper so flex sizing and alignment do not fight.
    return h("div", { className: "flex-image-holder" }, frame);
  }

  function flexIcon(icon) {
    const size = icon.size in TEXT_SIZE ? `${TEXT_SIZE[icon.size]}px` : icon.size || `${TEXT_SIZE.md}px`;
    const [w, hgt] = (icon.aspectRatio || "1:1").split(":").map(Number);
    const src = imageUrl(icon.url);
    const node = h("span", { className: "flex-icon" }, src ? picture(src, { alt: "" }) : null);
    node.style.height = size;
    node.style.width = `calc(${size} * ${w || 1} / ${hgt || 1})`;
    return node;
  }

  function flexSeparator(separator, parentLayout) {
    const node = h("div", { className: `flex-separator flex-separator-${parentLayout === "vertical" ? "h" : "v"}`, role: "separator" });
    if (separator.color) node.style.backgroundColor = separator.color;
    return node;
  }

  const flexFiller = () => h("div", { className: "flex-filler" });

  function flexSpacer(spacer, parentLayout) {
    const node = h("div", { className: "flex-spacer" });
    node.style[parentLayout === "vertical" ? "height" : "width"] = space(spacer.size ?? "md");
    return node;
  }

  function flexVideo(video) {
    return video.altContent ? flexComponent(video.altContent, "vertical", null) : h("div", { className: "flex-text", text: "（動画）" });
  }

  // ---- Template messages: buttons, confirm and their carousel, drawn as LINE draws them.

  function templateMessage(template, altText) {
    if (!template) return textBubble(altText || "", "bot");
    if (template.type === "confirm") {
      return h("div", { className: "template template-confirm" },
        h("p", { className: "template-text", text: template.text ?? "" }),
        h("div", { className: "template-actions template-actions-row" },
          (template.actions || []).map((action) => actionControl(action, "template-action", action.label ?? ""))));
    }
    if (template.type === "buttons") return templateCard(template);
    if (template.type === "carousel") {
      return h("div", { className: "carousel is-wide", role: "group", "aria-label": altText || "カルーセル" },
        (template.columns || []).map((column) => templateCard(column)));
    }
    return textBubble(altText || "", "bot");
  }

  function templateCard(card) {
    const src = imageUrl(card.thumbnailImageUrl);
    const thumbnail = src ? h("div", {
      className: "template-thumbnail",
      style: {
        aspectRatio: card.imageAspectRatio === "square" ? "1 / 1" : "1.51 / 1",
        backgroundColor: card.imageBackgroundColor || "#ffffff",
      },
    }, picture(src, { alt: "", style: { objectFit: card.imageSize === "contain" ? "contain" : "cover" } })) : null;
    return h("div", { className: "template template-buttons" },
      thumbnail,
      h("div", { className: "template-body" },
        card.title ? h("p", { className: "template-title", text: card.title }) : null,
        h("p", { className: "template-text", text: card.text ?? "" })),
      h("div", { className: "template-actions" },
        (card.actions || []).map((action) => actionControl(action, "template-action", action.label ?? ""))));
  }

  // ---- Simulated users: the server gives each browser session its own random ids; the page only remembers its choice.

  async function loadUsers() {
    const body = await api("users");
    return Array.isArray(body.users) ? body.users : [];
  }

  async function newUser() {
    const body = await api("users", { method: "POST", body: "{}" });
    return body.user;
  }

  function fillUserSelect(users, current) {
    ui.userSelect.replaceChildren(
      ...users.map((user, index) => h("option", { value: user, text: `ユーザー${index + 1}`, selected: user === current })),
      h("option", { value: NEW_USER, text: "＋ 新しいユーザー" }));
  }

  async function openUser(user) {
    state.generation += 1;
    const generation = state.generation;
    Object.assign(state, { user, seen: new Set(), lastId: 0, lastDay: null, lastSender: null, inflight: 0 });
    localStorage.setItem(STORE.user, user);
    hideQuickReplies();
    ui.pending.replaceChildren();
    ui.typing.hidden = true;
    ui.chat.replaceChildren(ui.tail);
    ui.chat.setAttribute("aria-busy", "true");
    try {
      const body = await api(`messages?user=${encodeURIComponent(user)}&after=0`);
      if (generation !== state.generation) return;
      const messages = body.messages || [];
      renderBatch(messages);
      // A user seen for the first time is a new friend, exactly as on LINE.
      if (messages.length === 0) send({ type: "follow" });
    } catch (error) {
      if (generation === state.generation) systemLine(`トーク履歴を読み込めませんでした。${error.message}`, "error");
    } finally {
      if (generation === state.generation) ui.chat.removeAttribute("aria-busy");
    }
  }

  // ---- Polling for what the bot or staff push later (staff replies, reminders).

  async function poll() {
    // While a send is out its answer brings everything new, and polling too would show the user's words twice.
    if (state.user && state.inflight === 0 && !document.hidden && !ui.chat.hasAttribute("aria-busy")) {
      const generation = state.generation;
      try {
        const body = await api(`messages?user=${encodeURIComponent(state.user)}&after=${state.lastId}`);
        ui.connection.hidden = true;
        if (generation === state.generation) renderBatch(body.messages || []);
      } catch {
        ui.connection.hidden = false;
      }
    }
    window.setTimeout(poll, POLL_MS);
  }

  // ---- Rich menu.

  async function loadRichMenu() {
    try {
      const body = await api("richmenu");
      const buttons = (body.items || []).map((item) => h("button", {
        type: "button",
        className: "richmenu-item",
        onclick: () => sendPostback(item.data, item.label),
      }, svgIcon(ICON_PATHS[item.id] || ICON_PATHS.default, "richmenu-icon"), h("span", { text: item.label })));
      ui.menuGrid.replaceChildren(...buttons);
    } catch (error) {
      ui.menuGrid.replaceChildren(h("p", { className: "richmenu-error", text: `メニューを読み込めませんでした。${error.message}` }));
    }
  }

  function setMenuOpen(open) {
    ui.menuGrid.hidden = !open;
    ui.menuToggle.setAttribute("aria-expanded", String(open));
    ui.menuToggle.querySelector(".richmenu-arrow").textContent = open ? "▼" : "▲";
    localStorage.setItem(STORE.menuOpen, open ? "1" : "0");
  }

  // ---- Composer.

  function updateComposer() {
    ui.sendButton.disabled = ui.input.value.trim() === "";
    ui.input.style.height = "auto";
    ui.input.style.height = `${Math.min(ui.input.scrollHeight, 120)}px`;
  }

  function submitTyped() {
    const text = ui.input.value;
    if (text.trim() === "") return;
    ui.input.value = "";
    updateComposer();
    sendText(text, { typed: text });
  }

  function start() {
    ui.composer.addEventListener("submit", (event) => {
      event.preventDefault();
      submitTyped();
    });
    ui.input.addEventListener("input", updateComposer);
    ui.input.addEventListener("keydown", (event) => {
      // Enter sends on a desktop keyboard, as in LINE for PC; while a Japanese IME is composing it only confirms the word.
      const desktop = window.matchMedia("(pointer: fine)").matches;
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229 && desktop) {
        event.preventDefault();
        submitTyped();
      }
    });
    ui.stickerButton.addEventListener("click", () => send({ type: "message", message: { ...SAMPLE_STICKER } }));
    ui.followButton.addEventListener("click", () => send({ type: "follow" }));
    ui.menuToggle.addEventListener("click", () => setMenuOpen(ui.menuGrid.hidden));

    ui.userSelect.addEventListener("change", async () => {
      try {
        const chosen = ui.userSelect.value === NEW_USER ? await newUser() : ui.userSelect.value;
        fillUserSelect(await loadUsers(), chosen);
        openUser(chosen);
      } catch (error) {
        fillUserSelect(await loadUsers().catch(() => [state.user]), state.user);
        systemLine(`ユーザーを切り替えられませんでした。${error.message}`, "error");
      }
    });

    ui.typing.querySelector(".avatar").append(svgIcon(ICON_PATHS.consult, "avatar-icon"));
    setMenuOpen(localStorage.getItem(STORE.menuOpen) !== "0");
    updateComposer();
    loadRichMenu();
    openFirstUser();
    window.setTimeout(poll, POLL_MS);
  }

  // The user chosen last time if this session still has it, else its first one, else a new one.
  async function openFirstUser() {
    try {
      const users = await loadUsers();
      const stored = localStorage.getItem(STORE.user);
      const current = users.includes(stored) ? stored : users[0] || await newUser();
      fillUserSelect(users.includes(current) ? users : [...users, current], current);
      openUser(current);
    } catch (error) {
      systemLine(`シミュレーターを開始できませんでした。${error.message}`, "error");
    }
  }

  start();
})();
