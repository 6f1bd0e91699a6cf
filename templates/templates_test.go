package templates

import (
	"strings"
	"testing"
)

// WeChat drops a passive text reply over 2,048 bytes.
const maxReplyBytes = 2048

// samples holds data for every message; a message without one fails the
// test below, so each new message is rendered at least once here.
var samples = map[string]any{
	"welcome": nil, "help": nil, "not_understood": nil, "unsupported": nil, "busy": nil, "slow_down": nil, "conversation_lost": map[string]string{"Title": "签约", "Keyword": "签约"},
	"doctor_help": "林静", "doctor_waiting_not_listed": "3",
	"doctor_waiting":    map[string]any{"Lines": []map[string]any{{"Number": "QY2611230001", "Name": "王秀英", "Community": "幸福社区", "Change": "郭建华家庭医生团队"}}, "More": 3},
	"doctor_day_agenda": map[string]any{"Day": "11月24日 周二", "Lines": []map[string]any{{"Time": "08:00-08:10", "Kind": "门诊", "Name": "王秀英", "Status": ""}}},
	"doctor_panel":      map[string]any{"Doctor": "林静", "Active": 2, "Groups": []map[string]any{{"Name": "高血压患者", "Count": 1}}},
	"call_clinic":       nil, "clinic_phone": map[string]any{"Phone": "0531-88886666"},
	"sign_name_sentence": nil, "question_hint": nil, "cancel_reason_question": "QY2611230001", "sign_packages_question": nil, "greeting": nil, "thanks": nil, "maybe_elsewhere": "预约", "unheard": nil, "ack_answer": nil, "nothing_to_cancel": nil,
	"crisis_answer":         map[string]any{"Doctor": "", "Team": "", "Phone": "0531-88886666"},
	"urgent_notice":         map[string]any{"Doctor": "林静", "Team": "林静家庭医生团队", "Phone": "0531-88886666"},
	"see_doctor":            map[string]any{"Doctor": ""},
	"contact_answer":        map[string]any{"Doctor": "", "Team": "", "Phone": "0531-88886666"},
	"info_change_answer":    map[string]any{"Doctor": "", "Team": "", "Phone": "0531-88886666"},
	"complaint_answer":      map[string]any{"Doctor": "", "Team": "", "Phone": ""},
	"trust_answer":          map[string]any{"Doctor": "林静", "Team": "林静家庭医生团队", "Phone": "0531-88886666"},
	"urgent_answer":         map[string]any{"Doctor": "林静", "Team": "林静家庭医生团队", "Phone": "0531-88886666"},
	"health_answer":         map[string]any{"Doctor": "", "Team": "", "Phone": "0531-88886666"},
	"care_contact":          map[string]any{"Doctor": "", "Team": "", "Phone": ""},
	"dont_know":             map[string]any{"Phone": "0531-88886666"},
	"sign_who_signed":       map[string]any{"Team": "林静家庭医生团队", "Doctor": "林静", "Phone": "0531-88886666", "Pending": true},
	"dont_know_signing_who": nil, "dont_know_signing_name": nil, "dont_know_signing_consent": nil, "dont_know_signing_id": nil,
	"dont_know_signing_phone": nil, "dont_know_signing_community": nil, "dont_know_signing_groups": nil, "dont_know_signing_team": nil,
	"dont_know_signing_insured": nil, "dont_know_signing_packages": nil, "dont_know_booking_kind": nil,
	"refuse_min_age":     map[string]any{"Name": "老年人健康管理包", "Age": 65},
	"refuse_max_age":     map[string]any{"Name": "儿童服务包", "Age": 6},
	"refuse_groups":      map[string]any{"Name": "慢病管理包", "Groups": "高血压患者、2型糖尿病患者"},
	"refuse_requires":    map[string]any{"Name": "糖尿病增值包", "Requires": "基本公共卫生服务包或基本医疗服务包"},
	"refuse_basic_count": map[string]any{"Count": 2, "Names": "基本医疗服务包、健康管理服务包"},
	"refuse_unknown":     nil,
	"refuse_twice":       "慢病管理包",
	"flow_expired":       map[string]any{"Title": "服务包浏览", "Minutes": 30, "Kept": true},
	"flow_resume_hint":   "签约",
	"nothing_to_resume":  nil,
	"consent_2026-11":    map[string]any{"Family": true},
	"agreement_2026-11":  nil,
	"consent_2026-12":    map[string]any{"Family": true, "Processor": "示范社区卫生服务中心", "Phones": "0531-88886666"},
	"agreement_2026-12": map[string]any{"Version": "2026-12", "Institution": "示范社区卫生服务中心", "Phone": "0531-88886666",
		"Team": "林静家庭医生团队", "Doctor": "林静", "Term": "1年", "Packages": []map[string]any{
			{"Name": "基本公共卫生服务包", "Items": "健康档案、随访", "Pays": map[string]any{"Fen": int64(0), "Known": true}}}},
	"processor_region": "昆明市",
	"items_more":       map[string]any{"Items": "健康档案、随访、体检", "Count": 13},
	"privacy_help":     map[string]string{"Step": "confirm", "Title": "撤回同意"}, "privacy_none": nil, "privacy_who_reask": 2,
	"privacy_who":              map[string]any{"Kind": "erase", "People": []map[string]any{{"Name": "王秀英"}, {"Name": "李小宝"}}},
	"privacy_confirm_withdraw": "王秀英", "privacy_confirm_erase": "王秀英", "privacy_confirm_reask": nil,
	"privacy_withdraw_done": map[string]any{"Name": "王秀英", "Ended": 1}, "privacy_erase_done": map[string]any{"Name": "王秀英", "Again": true},
	"privacy_withdraw_reason": nil, "privacy_answer_length": 100,
	"sign_relation":       map[string]any{"Minor": true, "Relations": []string{"父母", "祖父母或外祖父母", "其他监护人"}},
	"sign_relation_reask": 3,
	"sign_due":            nil, "sign_due_reask": nil, "sign_due_range": nil, "sign_due_ok": "2027年5月20日", "sign_due_skipped": nil,
	"dont_know_signing_due": nil,
	"sign_done_member":      map[string]any{"Number": "QY2611230001", "Name": "王小花", "Code": "12345678", "Days": 7, "Doctor": "林静"},
	"member_code_wrong":     nil, "member_confirmed": map[string]any{"Name": "王小花", "Number": "QY2611230001", "Doctor": "林静"},
	"refuse_minor_paid": map[string]any{"Name": "母婴健康包", "Known": false}, "contract_awaiting_member": "QY2611230001", "status_awaiting_member": nil, "member_code_limit": nil, "sign_id_awaiting_member": nil,
	"member_consent":         map[string]any{"Name": "王小花", "Number": "QY2611230001", "Consent": "同意书"},
	"member_agreement":       map[string]any{"Name": "王小花", "Number": "QY2611230001", "Price": map[string]any{"Payers": []map[string]any{}, "ResidentPays": int64(0), "ResidentKnown": true, "AllUnknown": false}, "Agreement": "协议"},
	"member_agreement_reask": nil, "member_declined": "QY2611230001", "member_help": map[string]string{"Step": "consent", "Title": "确认签约"},
	"push_member_confirmed":      map[string]string{"number": "QY2611230001", "resident": "王小花", "doctor": "林静"},
	"push_data_request_answered": map[string]string{"resident": "王秀英", "answer": "已删除可删除的信息"},
	"my_data": []map[string]any{{"Name": "王秀英", "MaskedID": "1101**********0211", "MaskedPhone": "138****5678", "Birth": "1955-03-02",
		"Sex": "female", "Community": "幸福社区", "Groups": "高血压患者", "Due": "", "ConsentedAt": "2026-11-23", "WithdrawnAt": "",
		"Held": map[string]any{"Contracts": 1, "Visits": 2, "Readings": 1, "Addresses": 0, "Referrals": 0, "Comments": 1,
			"ConsentVersion": map[string]any{"Valid": true, "String": "2026-12"}}}},
	"doctor_bound":        "张建国",
	"doctor_bind_invalid": nil,
	"doctor_bind_limit":   nil, "doctor_number_format": nil, "doctor_not_understood": "林静",
	"doctor_not_bound":            nil,
	"contract_not_yours":          "QY2611230001",
	"contract_already_answered":   "QY2611230001",
	"doctor_decline_needs_reason": "QY2611230001",
	"doctor_confirmed":            map[string]any{"Number": "QY2611230001", "Resident": "王秀英", "End": "2027-11-22"},
	"doctor_declined":             map[string]any{"Number": "QY2611230001", "Resident": "王秀英"},
	"flow_cancelled":              "服务包浏览",
	"packages_reask":              14,
	"packages_help":               map[string]string{"Step": "detail", "Title": "服务包浏览"},
	"packages_list": map[string]any{"Region": "某地", "Groups": []map[string]any{
		{"Heading": "基础服务包", "Lines": []map[string]any{{"N": 1, "Name": "基本公共卫生服务包", "Pays": map[string]any{"Fen": int64(0), "Known": true}}}},
	}},
	"package_detail": map[string]any{"N": 2, "Name": "基本医疗服务包", "Kind": "基础服务包", "Summary": "s",
		"Items": []map[string]any{{"Name": "随访", "PerYear": 4}}, "MinAge": nil, "MaxAge": nil, "Groups": "",
		"Requires": "", "TermMonths": 12,
		"Local": map[string]any{"Payers": []map[string]any{{"Name": "区级财政补助", "Fen": int64(7500), "Known": true}},
			"ResidentPays": int64(0), "ResidentKnown": false, "AllUnknown": false},
		"Elsewhere": nil},
}

// Samples for the signing conversation's messages.
func init() {
	community := []map[string]any{{"Town": "示范街道", "Name": "幸福社区"}}
	team := []map[string]any{{"Name": "林静家庭医生团队", "DoctorName": "林静", "Members": []map[string]any{{"Role": "护士", "Name": "韩雪"}}}}
	for name, data := range map[string]any{
		"sign_who": "李小宝", "sign_opening": "0531-88886666", "sign_who_reask": nil, "sign_name": true, "sign_name_reask": nil,
		"sign_consent_reask": nil, "sign_consent_declined": nil, "sign_id": false, "sign_id_format": nil,
		"sign_id_checksum": nil, "sign_id_birth": nil, "sign_id_future": nil, "sign_id_child_self": nil,
		"sign_id_taken": nil, "sign_id_limit": nil, "sign_id_ok": "1101**********0211", "sign_phone": true,
		"sign_phone_reask": nil, "sign_community": community, "sign_community_search": nil,
		"sign_community_reask": 3, "sign_community_many": "东村、西村", "sign_community_none": nil, "sign_no_team": nil,
		"sign_groups":       map[string]any{"Groups": []string{"高血压患者"}, "Family": false, "Auto": "65岁以上老年人"},
		"sign_groups_reask": 12, "sign_groups_ok": "高血压患者", "sign_team": map[string]any{"Teams": team, "Preferred": true}, "sign_team_reask": 2,
		"sign_hospital":       map[string]any{"Level": "区级医院", "Hospitals": []string{"道里区人民医院"}},
		"sign_hospital_reask": 3, "sign_insured": false, "sign_insured_reask": nil,
		"sign_packages": map[string]any{"Lines": []map[string]any{{"N": 1, "Name": "基本公共卫生服务包", "Pays": map[string]any{"Fen": int64(0), "Known": true}, "Default": true}},
			"Example": "2 3", "DefaultName": "基本公共卫生服务包", "MultiBasic": true, "PersonalisedMax": 1},
		"sign_packages_reask": 3, "sign_packages_refused": "基础服务包只能选一个。",
		"sign_confirm": map[string]any{"Name": "王秀英", "MaskedID": "1101**********0211", "MaskedPhone": "138****5678",
			"Community": "幸福社区", "Team": "林静家庭医生团队", "Doctor": "林静", "Hospitals": "", "Packages": "基本公共卫生服务包",
			"Price": map[string]any{"Payers": []map[string]any{}, "ResidentPays": int64(0), "ResidentKnown": true, "AllUnknown": false}, "Agreement": "协议要点"},
		"refuse_personalised_max": map[string]any{"Max": 1, "Names": "高血压服务包、老年人服务包"},
		"sign_confirm_reask":      nil, "sign_done": map[string]any{"Number": "QY2611230001", "Doctor": "林静"},
		"aftercare_none": "解约", "aftercare_pick": map[string]any{"Action": "解约", "Contracts": []map[string]any{{"ResidentName": "王秀英", "Number": "QY2611230001", "TeamName": "林静家庭医生团队"}}},
		"aftercare_pick_reask": 2, "aftercare_confirm_reask": "解约", "aftercare_help": map[string]string{"Step": "confirm", "Title": "解约"},
		"aftercare_confirm": map[string]any{"Action": "改签", "Name": "王秀英", "Number": "QY2611230001", "Team": "林静家庭医生团队", "Reason": "", "NewTeam": "郭建华家庭医生团队", "NewEnd": ""},
		"cancel_reason":     "QY2611230001", "cancel_done": map[string]any{"Number": "QY2611230001", "Visits": 2}, "renew_too_early": map[string]any{"Number": "QY2611230001", "End": "2027-11-22"},
		"renew_done": map[string]any{"Number": "QY2611230001", "End": "2028-11-22"}, "renew_withdrawn": "儿童服务包", "renew_confirm_reask": nil,
		"renew_confirm": map[string]any{"Name": "王秀英", "Number": "QY2611230001", "Team": "林静家庭医生团队", "NewEnd": "2028-11-22",
			"Packages": "基础服务包", "Dropped": []map[string]any{{"Reason": "“儿童服务包”只适合6岁及以下的居民。"}},
			"Price": map[string]any{"Payers": []map[string]any{}, "ResidentPays": int64(0), "ResidentKnown": true, "AllUnknown": false}, "Agreement": "协议要点"}, "change_no_team": "幸福社区", "change_waiting": map[string]any{"Number": "QY2611230001", "Team": "郭建华家庭医生团队"},
		"change_done":     map[string]any{"Number": "QY2611230001", "Doctor": "郭建华", "Active": true, "Team": "林静家庭医生团队"},
		"book_not_signed": nil, "book_who": []map[string]any{{"ResidentName": "王秀英", "DoctorName": "林静"}}, "book_who_reask": 2,
		"book_kind": map[string]any{"Kinds": []string{"门诊", "体检", "随访", "转诊"}, "HomeWhy": "残疾人、失能/半失能人员"}, "book_kind_reask": 4,
		"book_half": map[string]any{"Day": "11月24日 周二", "Morning": 12, "Afternoon": 9}, "book_half_reask": nil,
		"book_day_not_offered": "12月30日 周三", "book_time_not_offered": "18:00", "book_home_refused": "残疾人、失能/半失能人员，或签约了上门服务包的居民",
		"book_date": map[string]any{"Doctor": "林静", "Days": []map[string]any{{"Label": "11月24日 周二", "Free": 3}}, "More": true,
			"Moving": "11月23日 周一 08:00-08:10", "Name": "王秀英", "Kind": "门诊"},
		"book_half_none": map[string]string{"Day": "11月24日 周二", "Half": "上午"}, "book_list_again": nil,
		"book_date_reask": 14, "book_no_slots": "林静", "book_time": map[string]any{"Day": "11月24日 周二", "Times": []string{"08:00-08:10"}, "More": true, "Half": "上午", "Example": "8点"},
		"book_time_reask": 20, "book_day_full": nil, "book_address": "幸福社区3号楼", "book_referral_target": map[string]any{"Hospitals": []string{"道里区人民医院"}, "Green": true}, "book_referral_target_reask": 2, "book_address_reask": nil, "book_reason": nil, "book_reason_reask": nil,
		"book_confirm":       map[string]any{"Name": "王秀英", "Kind": "上门", "Doctor": "林静", "When": "11月24日 周二 08:00-08:10", "Address": "幸福社区3号楼", "Reason": "", "Hospital": "", "Moving": false},
		"book_confirm_reask": nil, "book_done": map[string]any{"When": "11月24日 周二 08:00-08:10", "Kind": "门诊", "Doctor": "林静", "Remind": "前一天晚上"},
		"book_slot_gone": nil, "text_too_long": 100, "book_contract_changed": nil, "book_overlap": nil, "book_too_many": 3, "book_gone": nil, "book_moved": map[string]any{"When": "11月25日 周三 09:00-09:10", "Remind": ""}, "book_help": nil,
		"my_appointments":        map[string]any{"Lines": []map[string]any{{"When": "11月24日 周二 08:00-08:10", "Kind": "门诊", "Doctor": "林静", "Name": "王秀英"}}, "Referrals": []map[string]any{{"Day": "11月23日", "Name": "王秀英", "Hospital": ""}}},
		"appointment_not_listed": "3", "appointment_too_late": 2, "appointment_cancel_help": nil, "appointment_kept": nil, "appointment_cancelled": nil,
		"appointment_cancel_confirm": map[string]any{"When": "11月24日 周二 08:00-08:10", "Kind": "门诊", "Doctor": "林静", "Name": "王秀英"},
		"doctor_agenda":              []map[string]any{{"Time": "08:00-08:10", "Kind": "门诊", "Name": "王秀英", "Status": ""}},
		"visit_not_listed":           "4", "visit_already_marked": 2, "visit_marked": map[string]any{"N": 1, "Name": "王秀英", "Done": true, "Readings": true},
		"visit_readings_unclear": "读数请写成“血压 135/85”或“血糖 6.8”",
		"personal_renewal":       map[string]any{"Name": "王秀英", "End": "2027-11-22"}, "personal_followup": map[string]any{"Name": "王秀英", "End": "", "PerYear": 4},
		"personal_elderly_checkup": map[string]any{"Name": "王秀英", "End": ""}, "personal_child": map[string]any{"Name": "李小宝", "Age": "1岁半", "Checkup": true, "Vaccines": "百白破疫苗第4剂、麻腮风疫苗第2剂、甲肝减毒活疫苗"},
		"personal_antenatal": map[string]any{"Name": "陈晓燕", "Week": 28, "What": "孕28～36周的产前检查", "Due": "5月20日"},
		"personal_postnatal": map[string]any{"Name": "陈晓燕", "What": "产后42天健康检查，妈妈去卫生院或医院复查"},
		"push_sign_request":  map[string]string{"number": "QY2611230001", "resident": "王秀英", "community": "幸福社区"},
		"push_sign_reminder": map[string]string{"number": "QY2611230001", "resident": "王秀英", "days": "2"},
		"push_sign_waiting":  map[string]string{"number": "QY2611230001", "doctor": "林静", "phone": "0531-88886666"},
		"push_team_handover": map[string]string{"number": "QY2611230001", "resident": "王秀英", "from": "林静家庭医生团队",
			"to": "郭建华家庭医生团队", "doctor": "郭建华"},
		"push_handover_received":     map[string]string{"from": "林静家庭医生团队", "contracts": "12", "visits": "3", "time": "11月24日 08:00"},
		"push_sign_confirmed":        map[string]string{"doctor": "林静", "number": "QY2611230001", "term_end": "2027-11-22", "resident": "王秀英"},
		"push_sign_declined":         map[string]string{"doctor": "林静", "number": "QY2611230001", "reason": "不在服务范围", "phone": "0531-88886666"},
		"push_contract_cancelled":    map[string]string{"resident": "王秀英", "number": "QY2611230001", "reason": "搬家"},
		"push_contract_renewed":      map[string]string{"resident": "王秀英", "number": "QY2611230001", "term_end": "2028-11-22"},
		"push_booking_created":       map[string]string{"resident": "王秀英", "kind": "门诊", "time": "2026-11-24 08:00"},
		"push_referral_request":      map[string]string{"resident": "王秀英", "hospital": "哈尔滨市第一医院", "time": "2026-11-24 08:00"},
		"referral_confirm":           map[string]any{"Name": "王秀英", "Doctor": "林静", "Hospital": "哈尔滨市第一医院", "Green": true, "Reason": "心慌"},
		"referral_sent":              map[string]any{"Doctor": "林静", "Hospital": "", "Green": false},
		"push_booking_changed":       map[string]string{"resident": "王秀英", "kind": "门诊", "time": "2026-11-24 08:00", "was": "2026-11-23 09:00"},
		"push_booking_cancelled":     map[string]string{"resident": "王秀英", "kind": "门诊", "time": "2026-11-24 08:00"},
		"push_team_change_confirmed": map[string]string{"doctor": "郭建华", "number": "QY2611230001", "resident": "王秀英", "team": "郭建华家庭医生团队", "term_end": "2027-11-22"},
		"push_team_change_declined":  map[string]string{"doctor": "郭建华", "number": "QY2611230001", "resident": "王秀英", "team": "林静家庭医生团队", "reason": "不在服务范围"},
		"push_team_changed":          map[string]string{"number": "QY2611230001", "resident": "王秀英", "team": "郭建华家庭医生团队"},
		"push_booking_doctor_leave":  map[string]string{"doctor": "林静", "resident": "王秀英", "kind": "门诊", "time": "2026-11-24 08:00"},
		"flow_reset":                 nil, "reminder_help": nil, "mine_help": nil,
		"push_appointment_reminder": map[string]string{"resident": "王秀英", "kind": "门诊", "time": "2026-11-24 08:00", "remark": "回复“提醒设置”可以关闭"},
		"push_satisfaction_survey":  map[string]string{"doctor": "林静", "kind": "门诊", "time": "2026-11-24 08:00"},
		"push_doctor_agenda":        map[string]string{"date": "2026-11-24", "count": "3", "first": "08:00"},
		"push_seasonal_reminder":    map[string]string{"resident": "王秀英", "title": "季节健康提示", "text": "霜降到了", "article": "", "remark": "回复“提醒设置”可以关闭"},
		"push_personal_reminder":    map[string]string{"title": "健康提醒", "text": "该随访了", "remark": "回复“提醒设置”可以关闭"},
		"push_late_reply":           map[string]string{"text": "您可以回复下面的词"},
		"reminder_how_to_stop":      nil, "reminder_settings": map[string]any{"Seasonal": true, "Personal": false},
		"reminder_settings_saved": map[string]any{"What": "健康知识提示", "On": false},
		"seasonal_digest": map[string]any{"tips": []map[string]string{
			{"name": "大雪", "day": "12月7日", "text": "大雪节气天冷路滑，老人出门穿防滑鞋。", "article": ""},
			{"name": "", "day": "", "text": "冬季是流感高发季，勤洗手多通风。", "article": "https://example.org/flu"}}},
		"broadcast_how_to_stop": nil, "broadcast_tip": map[string]string{"title": "冬季防煤气中毒", "text": "烧炉子要开窗通风。"},
		"survey_scored": 5, "survey_comment": nil, "survey_thanks": nil,
		"sign_back": nil, "sign_first_step": nil, "sign_help": nil, "mine_menu": nil,
		"my_contracts": map[string]any{"More": 1, "Lines": []map[string]any{{"N": 1, "Name": "王秀英", "MaskedID": "1101**********0210",
			"Number": "QY2611230001", "Status": "已签约", "Team": "林静家庭医生团队", "Doctor": "林静", "Packages": "基本公共卫生服务包", "TermEnd": "", "ChangeTeam": "郭建华家庭医生团队", "Live": true, "Declined": "", "Phone": "0531-88886666"}}},
	} {
		samples[name] = data
	}
}

func TestEveryMessageRendersAndFitsOneReply(t *testing.T) {
	names := MessageNames()
	if len(names) < 5 {
		t.Fatalf("only %d messages found", len(names))
	}
	for _, name := range names {
		data, ok := samples[name]
		if strings.HasPrefix(name, "push_title_") { // a template message's title takes no data
			ok = true
		}
		if !ok {
			t.Errorf("%s: no sample data in this test", name)
			continue
		}
		text, err := Message(name, data)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if text == "" || len(text) > maxReplyBytes {
			t.Errorf("%s: %d bytes, want 1..%d", name, len(text), maxReplyBytes)
		}
	}
}

func TestHelpNamesTheEntryKeywords(t *testing.T) {
	for _, name := range []string{"help", "welcome", "not_understood"} {
		text, err := Message(name, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, kw := range []string{"签约", "服务包", "预约", "我的"} {
			if !strings.Contains(text, kw) {
				t.Errorf("%s does not name %s", name, kw)
			}
		}
	}
}

func TestUnknownMessageIsAnError(t *testing.T) {
	if _, err := Message("no_such_message", nil); err == nil {
		t.Fatal("unknown message rendered")
	}
}

func TestYuan(t *testing.T) {
	for fen, want := range map[int64]string{0: "0", 5000: "50", 5050: "50.5", 5005: "50.05", 36000: "360", 1: "0.01", -250: "-2.5"} {
		if got := Yuan(fen); got != want {
			t.Errorf("Yuan(%d) = %q, want %q", fen, got, want)
		}
	}
}

// A list of one is never answered "请回复1到1之间的数字".
func TestNoRangeFromOneToOne(t *testing.T) {
	for _, name := range []string{"sign_groups_reask", "sign_packages_reask", "packages_reask", "book_who_reask", "book_date_reask",
		"book_time_reask", "book_kind_reask", "book_referral_target_reask", "sign_relation_reask", "aftercare_pick_reask",
		"sign_community_reask", "sign_team_reask", "sign_hospital_reask", "privacy_who_reask"} {
		text, err := Message(name, 1)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if strings.Contains(text, "1到1") {
			t.Errorf("%s with one line: %s", name, text)
		}
	}
}

// A message rendered without data is kept, and one rendered with data is
// not: the next with other data says the other thing.
func TestOnlyMessagesWithoutDataAreKept(t *testing.T) {
	help, err := Message("help", nil)
	if err != nil {
		t.Fatal(err)
	}
	if fresh, _ := render("help", nil); help != fresh {
		t.Fatalf("kept help differs from a fresh render:\n%s\n%s", help, fresh)
	}
	if again, _ := Message("help", nil); again != help {
		t.Fatal("help changed between two calls")
	}
	if allocs := testing.AllocsPerRun(10, func() { Message("help", nil) }); allocs != 0 {
		t.Fatalf("help rendered again: %v allocations a call", allocs)
	}
	zhang, err := Message("doctor_not_understood", "张")
	if err != nil {
		t.Fatal(err)
	}
	li, err := Message("doctor_not_understood", "李")
	if err != nil || zhang == li || !strings.Contains(li, "李医生") {
		t.Fatalf("a message with data was kept: %q then %q (%v)", zhang, li, err)
	}
}
