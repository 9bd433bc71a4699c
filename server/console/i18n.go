package console

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Languages of the console; the first is the default.
var Languages = []string{"en", "ru"}

// catalog holds every text of the console in English and Russian. A test checks
// that both are given for every key and that the templates use only these keys.
var catalog = map[string][2]string{
	"skip":          {"Skip to content", "Перейти к содержимому"},
	"nav":           {"Sections", "Разделы"},
	"nav.overview":  {"Overview", "Обзор"},
	"nav.flows":     {"Flows", "Сценарии"},
	"nav.dialogs":   {"Dialogs", "Диалоги"},
	"nav.outbox":    {"Outbox", "Исходящие"},
	"nav.events":    {"Events", "События"},
	"signed_in_as":  {"Signed in as", "Вы вошли как"},
	"signout":       {"Sign out", "Выйти"},
	"role.viewer":   {"viewer", "наблюдатель"},
	"role.operator": {"operator", "оператор"},
	"role.admin":    {"administrator", "администратор"},
	"any":           {"any", "любой"},
	"none":          {"Nothing here.", "Здесь пусто."},
	"cancel":        {"Cancel", "Отмена"},
	"search":        {"Search", "Найти"},
	"retry":         {"Retry", "Повторить"},
	"redrive":       {"Re-drive", "Провести заново"},

	"login.title":  {"Sign in to the fixit console", "Вход в консоль fixit"},
	"login.intro":  {"Use your token: the administrator's, an operator's or a viewer's.", "Введите свой токен: администратора, оператора или наблюдателя."},
	"login.token":  {"Token", "Токен"},
	"login.submit": {"Sign in", "Войти"},
	"login.bad":    {"This token is not known.", "Такой токен неизвестен."},
	"login.again":  {"The sign-in form expired; please try again.", "Форма входа устарела; попробуйте ещё раз."},

	"ov.dialogs":       {"Dialogs by status", "Диалоги по статусам"},
	"ov.inbox":         {"Inbox backlog", "Очередь входящих"},
	"ov.inbox.pending": {"events waiting", "событий ждут"},
	"ov.inbox.oldest":  {"oldest waits", "старейшее ждёт"},
	"ov.outbox":        {"Outbox", "Исходящие"},
	"ov.timers":        {"Timers", "Таймеры"},
	"ov.timers.hour":   {"due within an hour", "сработают в течение часа"},
	"ov.reload":        {"Last reload of the flows", "Последняя перезагрузка сценариев"},
	"ov.errors":        {"Recent errors", "Недавние ошибки"},
	"ov.errors.none":   {"No recent errors.", "Недавних ошибок нет."},

	"status.active":    {"active", "активен"},
	"status.handoff":   {"with an operator", "у оператора"},
	"status.finished":  {"finished", "завершён"},
	"status.abandoned": {"abandoned", "брошен"},
	"status.failed":    {"failed", "сбой"},

	"ostatus.pending": {"pending", "в очереди"},
	"ostatus.running": {"running", "выполняются"},
	"ostatus.failed":  {"failed", "отказ"},
	"ostatus.dead":    {"dead", "исчерпаны попытки"},

	"what.event":  {"event", "событие"},
	"what.action": {"action", "действие"},
	"what.dialog": {"dialog error", "ошибка диалога"},

	"col.when":     {"When", "Когда"},
	"col.what":     {"What", "Что"},
	"col.dialog":   {"Dialog", "Диалог"},
	"col.error":    {"Error", "Ошибка"},
	"col.customer": {"Customer", "Клиент"},
	"col.noname":   {"(no name)", "(без имени)"},
	"col.updated":  {"Updated", "Изменён"},
	"col.started":  {"Started", "Начат"},
	"col.vars":     {"Variables", "Переменные"},
	"col.from":     {"From", "Откуда"},
	"col.to":       {"To", "Куда"},
	"col.branch":   {"Branch", "Ветка"},
	"col.place":    {"Place", "Место"},
	"col.taken":    {"Taken (24 h)", "Пройдена (24 ч)"},
	"col.timer":    {"Timer", "Таймер"},
	"col.due":      {"Due", "Срок"},
	"col.kind":     {"Action", "Действие"},
	"col.attempts": {"attempts", "попыток"},
	"col.type":     {"Type", "Тип"},
	"col.received": {"Received", "Получено"},

	"reload.dry":       {"Dry run:", "Пробный прогон:"},
	"reload.dry.title": {"What a reload would do", "Что сделает перезагрузка"},
	"reload.added":     {"added", "добавлены"},
	"reload.changed":   {"changed", "изменены"},
	"reload.removed":   {"removed", "удалены"},
	"reload.migrated":  {"dialogs moved to the new version", "диалоги переходят на новую версию"},
	"reload.stranded":  {"dialogs that would be stranded", "диалоги, которые останутся без состояния"},
	"reload.nodiags":   {"No diagnostics.", "Замечаний нет."},
	"reload.check":     {"Check the flow files and reload…", "Проверить файлы сценариев и перезагрузить…"},
	"reload.now":       {"Reload now", "Перезагрузить сейчас"},
	"reload.done":      {"Flows reloaded: %s.", "Сценарии перезагружены: %s."},
	"reload.refused":   {"Reload refused: %d error(s); the previous flows keep serving.", "Перезагрузка отклонена: ошибок %d; работают прежние сценарии."},

	"flows.live":     {"live dialogs", "живых диалогов"},
	"flows.period":   {"numbers on arrows: branches taken in the last 24 hours", "числа на стрелках: сколько раз ветка пройдена за 24 часа"},
	"flows.diagram":  {"State diagram of flow", "Диаграмма состояний сценария"},
	"flows.start":    {"start on", "запуск по"},
	"flows.line":     {"line", "строка"},
	"flows.waiting":  {"waiting", "ждут"},
	"flows.branches": {"Branches and how often they were taken", "Ветки и сколько раз они пройдены"},

	"f.phone":  {"Phone", "Телефон"},
	"f.name":   {"Name", "Имя"},
	"f.key":    {"Correlation key", "Ключ корреляции"},
	"f.flow":   {"Flow", "Сценарий"},
	"f.state":  {"State", "Состояние"},
	"f.status": {"Status", "Статус"},

	"dialogs.live": {"Updates live.", "Обновляется вживую."},
	"dialogs.none": {"No dialog matches.", "Подходящих диалогов нет."},
	"page.first":   {"First page", "Первая страница"},
	"page.next":    {"Next page", "Следующая страница"},

	"dialog.title":      {"Dialog", "Диалог"},
	"dialog.thread":     {"Conversation", "Переписка"},
	"dialog.trace":      {"Trace", "Трассировка"},
	"dialog.timers":     {"Timers", "Таймеры"},
	"dialog.actions":    {"Actions", "Действия"},
	"dialog.nomessages": {"No messages yet.", "Сообщений пока нет."},
	"dialog.nosteps":    {"No steps yet.", "Шагов пока нет."},
	"dialog.notimers":   {"No timers.", "Таймеров нет."},

	"from.customer": {"Customer", "Клиент"},
	"from.bot":      {"Bot", "Бот"},
	"from.operator": {"operator", "оператор"},
	"msg.held":      {"held while with an operator", "получено, пока диалог у оператора"},

	"note.handoff":  {"Handed to a person", "Передан человеку"},
	"note.handback": {"Handed back to the bot", "Возвращён боту"},
	"note.end":      {"Dialog ended", "Диалог завершён"},

	"delivery.queued":    {"queued", "в очереди"},
	"delivery.sending":   {"sending", "отправляется"},
	"delivery.sent":      {"sent", "отправлено"},
	"delivery.delivered": {"delivered", "доставлено"},
	"delivery.read":      {"read", "прочитано"},
	"delivery.failed":    {"failed", "не доставлено"},

	"trace.noevent":  {"operator's note", "заметка оператора"},
	"trace.started":  {"the dialog started", "диалог начат"},
	"trace.branch":   {"branch", "ветка"},
	"trace.else":     {"(no guard)", "(без условия)"},
	"trace.action":   {"action", "действие"},
	"trace.timer":    {"timer fired:", "сработал таймер:"},
	"trace.operator": {"operator", "оператор"},

	"ctl.title":             {"Controls", "Управление"},
	"ctl.intro":             {"Each control is recorded in the dialog's history with your name and reason.", "Каждое действие записывается в историю диалога с вашим именем и причиной."},
	"ctl.takeover":          {"Take over", "Взять на себя"},
	"ctl.handback":          {"Hand back to the bot", "Вернуть боту"},
	"ctl.message":           {"Write to the customer", "Написать клиенту"},
	"ctl.goto":              {"Move to a state", "Перевести в состояние"},
	"ctl.close":             {"Close the dialog", "Закрыть диалог"},
	"ctl.reason":            {"Reason", "Причина"},
	"ctl.state":             {"State", "Состояние"},
	"ctl.state.resume":      {"where the handoff began", "где началась передача"},
	"ctl.status":            {"Status", "Статус"},
	"ctl.text":              {"Message", "Сообщение"},
	"ctl.template":          {"…or a WhatsApp template (outside the 24-hour window)", "…или шаблон WhatsApp (вне 24-часового окна)"},
	"ctl.template.name":     {"Template name", "Имя шаблона"},
	"ctl.template.language": {"Language", "Язык"},
	"ctl.template.params":   {"Parameters, one per line", "Параметры, по одному в строке"},
	"ctl.send":              {"Send", "Отправить"},
	"ctl.retry":             {"queued an action again", "повторил действие"},
	"ctl.redrive":           {"re-drove an event", "провёл событие заново"},
	"ctl.done":              {"Done: %s.", "Готово: %s."},
	"ctl.queued":            {"The dialog is busy: the control is queued and applied in its turn.", "Диалог занят: действие поставлено в очередь и будет применено в свой черёд."},

	"outbox.intro":    {"Actions that died (their retries ran out), failed (refused by the other side), or are failing and being retried.", "Действия, исчерпавшие попытки, отклонённые другой стороной или повторяемые после ошибок."},
	"outbox.dead":     {"Dead", "Исчерпаны попытки"},
	"outbox.failed":   {"Failed", "Отклонены"},
	"outbox.retrying": {"Failing, retrying", "С ошибками, повторяются"},
	"outbox.retried":  {"Action %d is queued again.", "Действие %d снова в очереди."},

	"events.intro":    {"Events no dialog took (unrouted) and events whose processing failed. Re-drive one after fixing the flows and reloading them.", "События, которые не попали ни в один диалог, и события с ошибкой обработки. Проведите их заново после исправления и перезагрузки сценариев."},
	"events.unrouted": {"Unrouted", "Без диалога"},
	"events.failed":   {"Failed", "С ошибкой"},
	"events.redriven": {"Event %d is routed again.", "Событие %d проводится заново."},

	"err.forbidden": {"Your role may not do this.", "Вашей роли это не разрешено."},
	"err.csrf":      {"The form expired or did not come from this console; reload the page and try again.", "Форма устарела или пришла не из консоли; обновите страницу и повторите."},
	"err.notfound":  {"Not found.", "Не найдено."},
	"err.internal":  {"Something went wrong; the server's log says what.", "Что-то пошло не так; подробности в журнале сервера."},

	"ago.now": {"just now", "только что"},
	"ago.s":   {"%d s ago", "%d с назад"},
	"ago.m":   {"%d min ago", "%d мин назад"},
	"ago.h":   {"%d h ago", "%d ч назад"},
	"ago.d":   {"%d d ago", "%d дн назад"},
	"in.s":    {"in %d s", "через %d с"},
	"in.m":    {"in %d min", "через %d мин"},
	"in.h":    {"in %d h", "через %d ч"},
	"in.d":    {"in %d d", "через %d дн"},
	"age.s":   {"%d s", "%d с"},
	"age.m":   {"%d min", "%d мин"},
	"age.h":   {"%d h", "%d ч"},
	"age.d":   {"%d d", "%d дн"},
}

// Text returns the text of key in lang, formatted with args when given. An
// unknown key comes back as itself in brackets, so that it shows and a test finds it.
func Text(lang, key string, args ...any) string {
	tr, ok := catalog[key]
	if !ok {
		return "[" + key + "]"
	}
	s := tr[0]
	if lang == "ru" {
		s = tr[1]
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

// Known reports whether the catalog has key.
func Known(key string) bool { _, ok := catalog[key]; return ok }

// Keys lists the catalog's keys.
func Keys() []string {
	out := make([]string, 0, len(catalog))
	for k := range catalog {
		out = append(out, k)
	}
	return out
}

// Negotiate picks the console's language for an Accept-Language header: the
// first of the browser's languages (by preference) that the console has.
func Negotiate(accept string) string {
	best, bestQ := Languages[0], -1.0
	for _, part := range strings.Split(accept, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		for _, l := range Languages {
			if primary == l && q > bestQ {
				best, bestQ = l, q
			}
		}
	}
	return best
}

// Supported reports whether lang is one of Languages.
func Supported(lang string) bool {
	for _, l := range Languages {
		if l == lang {
			return true
		}
	}
	return false
}

// Ago says how long before now t was ("3 min ago"), or how long until it comes
// ("in 5 min").
func Ago(lang string, t, now time.Time) string {
	d := now.Sub(t)
	prefix := "ago."
	if d < 0 {
		d, prefix = -d, "in."
	}
	if d < 5*time.Second && prefix == "ago." {
		return Text(lang, "ago.now")
	}
	return Text(lang, prefix+unit(d), amount(d))
}

// Age says how long a duration is ("12 min").
func Age(lang string, d time.Duration) string {
	return Text(lang, "age."+unit(d), amount(d))
}

func unit(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "s"
	case d < time.Hour:
		return "m"
	case d < 48*time.Hour:
		return "h"
	}
	return "d"
}

func amount(d time.Duration) int {
	switch unit(d) {
	case "s":
		return int(d / time.Second)
	case "m":
		return int(d / time.Minute)
	case "h":
		return int(d / time.Hour)
	}
	return int(d / (24 * time.Hour))
}
