"use strict";
/* Interface strings in English and Simplified Chinese. Only these fixed strings are ever
   put into the page as markup-free text; data from the air is always set as textContent. */
const SW_I18N = (function () {
  const S = {
    en: {
      user: "User", password: "Password", sign_in: "Sign in", sign_out: "Sign out",
      wrong_login: "Wrong user or password.", too_many_logins: "Too many failed sign-ins; wait a few minutes.",
      network_error: "The console cannot be reached.",
      connected: "Connected", disconnected: "Disconnected from the broker",
      console_down: "Disconnected from the console",
      queue: "Alerts", detail: "Detail", cameras: "Cameras", audit: "Audit",
      kind: "Kind", status: "Status", area: "Area", time: "Time", sort: "Sort", all: "All",
      in_queue: "In the queue", by_severity: "Severity", by_time: "Time",
      last_h: "Last {n} h", any_time: "Any time", group: "Group repeats",
      severity: "Severity", vessel: "Vessel", dark: "dark (no AIS)", mmsi: "MMSI", name: "Name",
      reg_no: "Registration", reg_name: "Registered name", reg_hull: "Hull number", reg_port: "Port · type · length",
      reg_owner: "Owner", reg_home: "Home harbours", reg_until: "Valid until", watchlist: "Watchlist",
      no_name: "(no name)", factors: "Factors", evidence: "Evidence", no_evidence: "No snapshot.",
      zone: "Nearest authorised zone", zone_distance: "Distance to zone", shore_distance: "Distance to shore",
      playback: "Play episode", actions: "Actions", history: "History",
      acknowledge: "Acknowledge", start: "Take over", resolve: "Resolve", escalate: "Escalate",
      assign: "Assign", dismiss: "Dismiss", comment: "Comment", silence_vessel: "Silence vessel",
      silence_place: "Silence place", reopen: "Reopen", minutes: "minutes", note: "Note",
      state_new: "new", state_acknowledged: "acknowledged", state_in_progress: "in progress",
      state_resolved: "resolved", state_dismissed: "dismissed", escalated: "escalated",
      silenced: "silenced", det_open: "active", det_update: "active", det_closed: "cleared",
      reason_false_alarm: "False alarm", reason_authorised_activity: "Authorised activity",
      reason_duplicate: "Duplicate", reason_sensor_fault: "Sensor fault", reason_other: "Other",
      online: "online", offline: "offline", degraded: "degraded", unknown: "no report",
      share_online: "Online", fps: "fps", last_frame: "Last frame", reason: "Reason",
      uncovered: "Shore not covered by a working camera", coast: "coast",
      audit_user: "User", audit_alert: "Alert", since_h: "Hours back", filter: "Filter",
      who: "Who", what: "What", when: "When", new_alert: "New alert", last_fixes: "Last fixes",
      course: "Course", speed: "Speed", no_selection: "Select an alert in the queue or on the map.",
      count: "{n} alerts", repeats: "×{n}", sound: "Sound", lang: "Language",
      kind_unusual_landing: "Unusual landing", kind_dark_approach: "Dark approach",
      kind_dark_vessel: "Dark vessel", kind_rendezvous: "Rendezvous", kind_loitering: "Loitering",
      kind_identity_anomaly: "Identity anomaly", kind_impossible_speed: "Impossible speed",
      kind_ais_not_seen: "AIS not seen", kind_landing_site: "Landing site", zone_label: "Times in",
      kind_cloned_mmsi: "Cloned MMSI", kind_outside_home_harbour: "Away from home harbour",
    },
    "zh-CN": {
      user: "用户", password: "密码", sign_in: "登录", sign_out: "退出",
      wrong_login: "用户名或密码错误。", too_many_logins: "登录失败次数过多，请稍后再试。",
      network_error: "无法连接控制台。",
      connected: "已连接", disconnected: "与消息代理断开连接",
      console_down: "与控制台断开连接",
      queue: "告警", detail: "详情", cameras: "摄像机", audit: "审计",
      kind: "类型", status: "状态", area: "区域", time: "时间", sort: "排序", all: "全部",
      in_queue: "待处理", by_severity: "严重程度", by_time: "时间",
      last_h: "最近 {n} 小时", any_time: "任意时间", group: "合并重复",
      severity: "严重程度", vessel: "船舶", dark: "暗船（无AIS）", mmsi: "MMSI", name: "船名",
      reg_no: "登记号", reg_name: "登记船名", reg_hull: "舷号", reg_port: "船籍港 · 类型 · 船长",
      reg_owner: "船东", reg_home: "核定停泊港", reg_until: "有效期至", watchlist: "重点关注",
      no_name: "（无船名）", factors: "因素", evidence: "证据", no_evidence: "无截图。",
      zone: "最近的授权区域", zone_distance: "距区域", shore_distance: "距岸",
      playback: "回放", actions: "操作", history: "记录",
      acknowledge: "确认", start: "接手处理", resolve: "解决", escalate: "升级",
      assign: "指派", dismiss: "排除", comment: "备注", silence_vessel: "静默该船",
      silence_place: "静默该地点", reopen: "重新打开", minutes: "分钟", note: "说明",
      state_new: "新", state_acknowledged: "已确认", state_in_progress: "处理中",
      state_resolved: "已解决", state_dismissed: "已排除", escalated: "已升级",
      silenced: "已静默", det_open: "进行中", det_update: "进行中", det_closed: "已消除",
      reason_false_alarm: "误报", reason_authorised_activity: "授权活动",
      reason_duplicate: "重复", reason_sensor_fault: "传感器故障", reason_other: "其他",
      online: "在线", offline: "离线", degraded: "降级", unknown: "无报告",
      share_online: "在线率", fps: "帧/秒", last_frame: "最后一帧", reason: "原因",
      uncovered: "无可用摄像机覆盖的岸线", coast: "岸线",
      audit_user: "用户", audit_alert: "告警", since_h: "最近小时数", filter: "筛选",
      who: "操作人", what: "操作", when: "时间", new_alert: "新告警", last_fixes: "最近位置",
      course: "航向", speed: "航速", no_selection: "请在列表或地图上选择告警。",
      count: "{n} 条告警", repeats: "×{n}", sound: "声音", lang: "语言",
      kind_unusual_landing: "异常登陆", kind_dark_approach: "暗船靠近",
      kind_dark_vessel: "暗船", kind_rendezvous: "海上会合", kind_loitering: "徘徊",
      kind_identity_anomaly: "身份异常", kind_impossible_speed: "速度异常",
      kind_ais_not_seen: "未见AIS", kind_landing_site: "疑似登陆点", zone_label: "时区",
      kind_cloned_mmsi: "套用MMSI", kind_outside_home_harbour: "夜泊非船籍港",
    },
  };
  function pick(userLang) {
    if (userLang && S[userLang]) return userLang;
    const nav = (navigator.languages && navigator.languages[0]) || navigator.language || "en";
    return nav.toLowerCase().startsWith("zh") ? "zh-CN" : "en";
  }
  function t(lang, key, vars) {
    let s = (S[lang] && S[lang][key]) || S.en[key] || key;
    if (vars) for (const k of Object.keys(vars)) s = s.replace("{" + k + "}", String(vars[k]));
    return s;
  }
  function apply(root, lang) {
    root.documentElement && (root.documentElement.lang = lang);
    for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(lang, el.dataset.i18n);
  }
  return { pick, t, apply, langs: Object.keys(S) };
})();
