//! A deterministic generator of realistic Cloud API traffic, as NDJSON lines
//! (send results and webhook bodies), for demos, tests and benchmarks.
//!
//! Shapes and proportions follow `shared/CLOUD_API.md`: mostly template
//! sends by marketing campaigns and bots; about 93% HTTP 200 and the rest
//! 400/401/429/500 or no response; accepted messages get `sent`, then
//! usually `delivered` and often `read`, a few `failed`; webhooks arrive
//! late and out of order (a `read` before its `delivered`); about 0.5% of
//! webhooks are delivered twice; about 6% of messages get a reply or a
//! quick-reply click. The same seed always gives the same lines.

use serde_json::{json, Value};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

const CAMPAIGNS: &[&str] = &[
    "Black Friday 2025",
    "Natal Premiado",
    "Volta às Aulas",
    "Dia das Mães",
    "Liquida Verão",
    "Cashback Setembro",
    "Aniversário Loja",
    "Frete Grátis Fim de Semana",
    "Lançamento Coleção",
    "Reativação 90 dias",
    "Cyber Monday",
    "Semana do Cliente",
];
const BOTS: &[&str] = &[
    "Confirmação de Pedido",
    "Lembrete de Pagamento",
    "Pesquisa NPS",
    "Rastreio de Entrega",
    "Carrinho Abandonado",
];
const MESSAGE_BOTS: &[&str] = &["Atendimento bot", "Suporte Técnico", "Boletos"];
/// The template each campaign and bot sends (by name; a message bot sends
/// free text, and a template only now and then).
fn template_of(name: &str) -> &'static str {
    match name {
        "Black Friday 2025" | "Cyber Monday" | "Liquida Verão" => "promo_black_friday",
        "Natal Premiado" => "natal_cupom",
        "Volta às Aulas" => "volta_aulas_desconto",
        "Cashback Setembro" | "Aniversário Loja" => "cashback_available",
        "Lançamento Coleção" | "Dia das Mães" => "new_collection",
        "Reativação 90 dias" | "Semana do Cliente" => "welcome_back",
        "Frete Grátis Fim de Semana" => "cart_reminder",
        "Confirmação de Pedido" => "order_confirmation",
        "Lembrete de Pagamento" | "Boletos" => "payment_reminder",
        "Pesquisa NPS" => "nps_survey",
        "Carrinho Abandonado" => "cart_reminder",
        _ => "delivery_update",
    }
}

const TEMPLATES: &[&str] = &[
    "promo_black_friday",
    "natal_cupom",
    "volta_aulas_desconto",
    "order_confirmation",
    "payment_reminder",
    "nps_survey",
    "delivery_update",
    "cart_reminder",
    "welcome_back",
    "new_collection",
    "cashback_available",
];
const USERS: &[&str] = &[
    "ana.paula",
    "carlos",
    "fernanda",
    "joao.silva",
    "marina",
    "rafael",
    "system",
    "beatriz",
];
const SUBACCOUNTS: &[&str] = &["loja-sp", "loja-rj", "ecommerce"];
const PHONE_NUMBER_IDS: &[&str] = &["106540352242922", "109876543210987"];
const FIRST_NAMES: &[&str] = &[
    "Maria",
    "José",
    "Ana",
    "João",
    "Francisca",
    "Antônio",
    "Juliana",
    "Pedro",
    "Camila",
    "Lucas",
    "Aline",
    "Bruno",
];
const REPLIES: &[&str] = &[
    "Quero saber mais",
    "Qual o prazo de entrega?",
    "Obrigado!",
    "Não tenho interesse",
    "Pode me ligar?",
    "Já paguei o boleto",
    "Quanto custa o frete?",
    "Tem no tamanho M?",
    "Parar",
    "👍",
];

/// A small, fast, deterministic PRNG (SplitMix64): the generator must give
/// the same data everywhere, whatever crate versions are installed.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Options of the generator.
#[derive(Clone, Debug)]
pub struct GeneratorOptions {
    /// Number of messages (outbound sends; replies come on top).
    pub messages: u64,
    /// Seed of the pseudo-random sequence.
    pub seed: u64,
    /// Time of the first message, UTC milliseconds.
    pub start_ms: i64,
    /// Span over which messages are spread, milliseconds.
    pub span_ms: i64,
    /// Distinct customer phone numbers.
    pub customers: u64,
}

impl GeneratorOptions {
    /// Messages over `span_ms` ending early enough before `now_ms` that
    /// their webhooks and replies (up to hours later) are not in the future.
    pub fn ending_before(mut self, now_ms: i64) -> GeneratorOptions {
        self.start_ms = now_ms - self.span_ms - 86_400_000;
        self
    }

    /// `messages` over 30 days from 2025-01-01, seed 1.
    pub fn new(messages: u64) -> GeneratorOptions {
        GeneratorOptions {
            messages,
            seed: 1,
            start_ms: 1_735_689_600_000,
            span_ms: 30 * 86_400_000,
            customers: (messages / 5).clamp(100, 2_000_000),
        }
    }
}

/// The body of each generated template: what the customer read, with the
/// three parameters the generator sends (`{{1}}` the first name, `{{2}}`
/// an amount, `{{3}}` a date), in the order of [`TEMPLATES`].
const TEMPLATE_BODIES: &[&str] = &[
    "Olá {{1}}! A Black Friday chegou: ofertas a partir de {{2}} só até {{3}}.",
    "{{1}}, seu cupom de Natal vale {{2}} em compras até {{3}}.",
    "Volta às aulas, {{1}}: material escolar com desconto a partir de {{2}} até {{3}}.",
    "Olá {{1}}, recebemos seu pedido de {{2}}. Entrega prevista: {{3}}.",
    "{{1}}, seu boleto de {{2}} vence em {{3}}. Pague pelo app e evite juros.",
    "{{1}}, de 0 a 10, quanto você recomenda a nossa loja? Sua compra de {{2}} em {{3}}.",
    "Olá {{1}}, seu pedido de {{2}} saiu para entrega e chega {{3}}.",
    "{{1}}, você esqueceu itens no carrinho: {{2}}. Reservamos até {{3}}.",
    "Que bom te ver de volta, {{1}}! Um presente de {{2}} para você até {{3}}.",
    "{{1}}, a nova coleção chegou: peças a partir de {{2}}, lançamento em {{3}}.",
    "{{1}}, você tem {{2}} de cashback para usar até {{3}}.",
];

/// The definitions of the templates the generator sends, as the Graph
/// API's `message_templates` page answers them, in force from
/// `opts.start_ms`; two of them are edited halfway through the period
/// (`ticks_first_seen`), so a store shows both versions.
pub fn template_definitions(opts: &GeneratorOptions) -> Value {
    let at = |ms: i64| crate::time::format_rfc3339(ms, 0);
    let definition = |i: usize, body: String, seen_ms: i64| {
        let category = if (3..=6).contains(&i) {
            "UTILITY"
        } else {
            "MARKETING"
        };
        json!({
            "id": format!("{}", 594_425_479_261_000u64 + i as u64),
            "name": TEMPLATES[i], "language": "pt_BR", "status": "APPROVED",
            "category": category, "parameter_format": "POSITIONAL",
            "ticks_first_seen": at(seen_ms),
            "components": [
                {"type": "BODY", "text": body},
                {"type": "FOOTER", "text": "Loja Exemplo · responda PARAR para sair"},
                {"type": "BUTTONS", "buttons": [
                    {"type": "QUICK_REPLY", "text": "Quero"},
                    {"type": "QUICK_REPLY", "text": "Parar"}]}]
        })
    };
    let mut data: Vec<Value> = TEMPLATES
        .iter()
        .enumerate()
        .map(|(i, _)| definition(i, TEMPLATE_BODIES[i].to_string(), opts.start_ms))
        .collect();
    let halfway = opts.start_ms + opts.span_ms / 2;
    for i in [0, 6] {
        let edited = format!("{} Novidade: frete grátis.", TEMPLATE_BODIES[i]);
        data.push(definition(i, edited, halfway));
    }
    json!({"data": data, "paging": {"cursors": {"before": "MAZDZD", "after": "MjQZD"}}})
}

/// Iterator over generated NDJSON lines (without the trailing newline).
pub struct Generator {
    opts: GeneratorOptions,
    rng: Rng,
    next_message: u64,
    /// Events waiting for their arrival time: (arrival, tie-break, line).
    pending: BinaryHeap<Reverse<(i64, u64, Vec<u8>)>>,
    tiebreak: u64,
}

impl Generator {
    /// A generator with these options.
    pub fn new(opts: GeneratorOptions) -> Generator {
        let rng = Rng(opts.seed ^ 0x7469_636B_7321);
        Generator {
            opts,
            rng,
            next_message: 0,
            pending: BinaryHeap::new(),
            tiebreak: 0,
        }
    }

    fn schedule(&mut self, arrival: i64, value: &Value) {
        self.tiebreak += 1;
        let line = serde_json::to_vec(value).unwrap_or_default();
        self.pending.push(Reverse((arrival, self.tiebreak, line)));
    }

    fn message_time(&self, i: u64) -> i64 {
        self.opts.start_ms
            + (i as i128 * self.opts.span_ms as i128 / self.opts.messages.max(1) as i128) as i64
    }

    /// One of the customers, always the same for the same number `n`:
    /// most in Brazil, the rest across Latin America, the United States,
    /// Spain and Japan (the country drawn independently of the kind of
    /// identifier, so every country has people of each kind).
    fn customer(&mut self) -> Customer {
        let n = self.rng.below(self.opts.customers);
        let (country, calling) = match (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) % 100 {
            0..=69 => ("BR", "55"),
            70..=79 => ("MX", "52"),
            80..=84 => ("AR", "54"),
            85..=89 => ("CO", "57"),
            90..=93 => ("US", "1"),
            94..=96 => ("ES", "34"),
            _ => ("JP", "81"),
        };
        let ddd = 11 + (n % 89);
        let local = (n * 7919) % 100_000_000;
        let dialled = match country {
            "BR" => format!("55{ddd}9{local:08}"),
            "US" => format!("1{}{:07}", 201 + (n % 300) * 2, local % 10_000_000),
            _ => format!("{calling}{ddd}{local:08}"),
        };
        match n % 100 {
            // Accounts older than Brazil's ninth digit: Meta answers with,
            // and the person writes from, the number without it.
            0..=6 if country == "BR" => Customer {
                wa_id: Some(format!("55{ddd}{local:08}")),
                dialled: Some(dialled),
                user_id: None,
                username: None,
            },
            // People who hide their number behind a username: only their
            // business-scoped user id is known.
            7..=9 => Customer {
                dialled: None,
                wa_id: None,
                user_id: Some(format!(
                    "{country}.{:020}",
                    n.wrapping_mul(0x9E37_79B9_7F4A_7C15) % 10u64.pow(19)
                )),
                username: Some(format!("cliente{n}")),
            },
            _ => Customer {
                wa_id: Some(dialled.clone()),
                dialled: Some(dialled),
                user_id: None,
                username: None,
            },
        }
    }

    /// Emits the send result and future webhooks of message `i`.
    /// Account and template events, about one per 2,000 messages: a
    /// template approved, recategorised or downgraded, a number's quality
    /// or messaging limit.
    fn account_event(&mut self, i: u64, t: i64) {
        let template = *TEMPLATES
            .get((i / 2000) as usize % TEMPLATES.len())
            .unwrap_or(&"welcome_back");
        let id = 594_425_479_261_596u64 + (i / 2000) % 50;
        let (field, value) = match (i / 2000) % 5 {
            0 => (
                "message_template_status_update",
                json!({"event": "APPROVED", "message_template_id": id,
                "message_template_name": template, "message_template_language": "pt_BR", "reason": "NONE"}),
            ),
            1 => (
                "template_category_update",
                json!({"message_template_id": id, "message_template_name": template,
                "message_template_language": "pt_BR", "previous_category": "UTILITY", "new_category": "MARKETING"}),
            ),
            2 => (
                "message_template_quality_update",
                json!({"previous_quality_score": "GREEN", "new_quality_score": "YELLOW",
                "message_template_id": id, "message_template_name": template, "message_template_language": "pt_BR"}),
            ),
            3 => (
                "phone_number_quality_update",
                json!({"display_phone_number": "15550783881", "event": "FLAGGED",
                "current_limit": "TIER_10K"}),
            ),
            _ => (
                "business_capability_update",
                json!({"max_daily_conversation_per_phone": 10000,
                "whatsapp_business_manager_messaging_limit": "TIER_10K"}),
            ),
        };
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "time": t / 1000,
            "changes": [{"field": field, "value": value}]}]});
        self.schedule(t + 1_000, &body);
    }

    /// A message the business sent from the WhatsApp Business app on a
    /// coexistence number (an echo), to a customer.
    fn echo(&mut self, i: u64, t: i64) {
        let person = self.customer();
        let Some(to) = person.wa_id.clone() else {
            return;
        };
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "smb_message_echoes",
            "value": {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_IDS[0]},
                "message_echoes": [{"from": "15550783881", "to": to, "id": format!("wamid.ECHO{i:012X}"),
                    "timestamp": (t / 1000).to_string(), "type": "text",
                    "text": {"body": "Oi! Seu pedido já saiu para entrega."}}]}}]}]});
        self.schedule(t + 2_000, &body);
    }

    fn make_message(&mut self, i: u64) {
        let t = self.message_time(i);
        if i % 2000 == 1999 {
            self.account_event(i, t);
        }
        if self.rng.chance(15) {
            self.echo(i, t);
        }
        let r = &mut self.rng;
        let (category, name, recipient_type) = match r.below(100) {
            0..=59 => (
                "marketing_campaign",
                r.pick(CAMPAIGNS),
                r.pick(&["lead", "customer", "contact"]),
            ),
            60..=84 => (
                "template_bot",
                r.pick(BOTS),
                r.pick(&["customer", "contact"]),
            ),
            _ => ("message_bot", r.pick(MESSAGE_BOTS), "customer"),
        };
        let template = template_of(name);
        let user = r.pick(USERS);
        let sub = r.pick(SUBACCOUNTS);
        let pni = r.pick(PHONE_NUMBER_IDS);
        let first = r.pick(FIRST_NAMES);
        let person = self.customer();
        // What the sender typed, and what webhooks name the person by.
        let to = person
            .dialled
            .clone()
            .or_else(|| person.user_id.clone())
            .unwrap_or_default();
        let phone = person.wa_id.clone().unwrap_or_default();
        let r = &mut self.rng;
        let wamid = format!(
            "wamid.HBgM{:012X}{:08X}",
            i,
            (self.opts.seed as u32).wrapping_mul(2654435761)
        );
        let correlation = format!("crm-{}-{i}", self.opts.seed);
        let is_template = category != "message_bot" || r.chance(300);
        let reais = 10 + r.below(490);
        let request = if is_template {
            json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": person.typed(&to), "type": "template",
                "biz_opaque_callback_data": correlation,
                "template": {"name": template, "language": {"code": "pt_BR"}, "components": [
                    {"type": "body", "parameters": [
                        {"type": "text", "parameter_name": "customer_name", "text": first},
                        // The amount as shown and as a number agree.
                        {"type": "currency", "currency": {"fallback_value": format!("R$ {reais},90"), "code": "BRL", "amount_1000": reais * 1000 + 900}},
                        {"type": "date_time", "date_time": {"fallback_value": format!("{} de dezembro", 1 + r.below(28))}}]},
                    {"type": "button", "sub_type": "quick_reply", "index": "0", "parameters": [{"type": "payload", "payload": "QUERO"}]},
                    {"type": "button", "sub_type": "quick_reply", "index": "1", "parameters": [{"type": "payload", "payload": "PARAR"}]}]}})
        } else {
            json!({"messaging_product": "whatsapp", "to": to, "type": "text",
                "text": {"body": format!("Olá {first}, seu pedido {} foi atualizado.", 1000 + r.below(900_000))}})
        };
        let code_roll = r.below(1000);
        let (code, response, transport): (Option<u16>, Value, Option<&str>) = match code_roll {
            0..=929 => (
                Some(200),
                json!({"messaging_product": "whatsapp", "contacts": [person.answered(&to)],
                    "messages": [{"id": wamid, "message_status": if r.chance(5) { "held_for_quality_assessment" } else { "accepted" }}]}),
                None,
            ),
            930..=959 => {
                let (c, title, details) = *[
                    (131047, "Re-engagement message", "More than 24 hours have passed since the customer last replied."),
                    (132000, "Number of parameters does not match the expected number of params", "body: number of localizable_params (2) does not match the expected number of params (3)"),
                    (100, "Invalid parameter", "Parameter value is not valid"),
                    (132001, "Template name does not exist in the translation", "template name (welcome_back) does not exist in pt_BR"),
                ]
                .get(r.below(4) as usize)
                .unwrap_or(&(100, "Invalid parameter", ""));
                (Some(400), meta_error(c, title, details), None)
            }
            960..=974 => (
                Some(429),
                meta_error(
                    130429,
                    "Rate limit hit",
                    "Cloud API message throughput has been reached.",
                ),
                None,
            ),
            975..=984 => (
                Some(401),
                json!({"error": {"message": "Error validating access token: Session has expired.", "type": "OAuthException", "code": 190, "error_subcode": 463, "fbtrace_id": "AXz"}}),
                None,
            ),
            985..=994 => (
                Some(500),
                meta_error(
                    131000,
                    "Something went wrong",
                    "Unknown error, retry later.",
                ),
                None,
            ),
            _ => (
                None,
                Value::Null,
                Some(if r.chance(500) {
                    "operation timed out after 30s"
                } else {
                    "connection refused"
                }),
            ),
        };
        let offset = if r.chance(800) { "-03:00" } else { "+00:00" };
        let recorded =
            crate::time::format_rfc3339(t, if offset == "-03:00" { -3 * 3600 } else { 0 });
        let mut send = json!({"recorded_at": recorded, "category": category, "name": name, "recipient_type": recipient_type,
            "recipient_ref": format!("{recipient_type}-{}", r.below(500_000)), "user": user, "subaccount": sub,
            "phone_number_id": pni, "request": request, "response_code": code, "response": response});
        if let Some(e) = transport {
            send["error"] = json!(e);
        }
        // Sends are logged by the CRM a little after the call; sometimes
        // much later, after the first webhooks.
        let send_arrival = t + if r.chance(20) { 120_000 } else { 200 };
        self.schedule(send_arrival, &send);
        if code != Some(200) {
            return;
        }
        let r = &mut self.rng;
        let conv_type = if category == "marketing_campaign" {
            "marketing"
        } else if category == "template_bot" {
            "utility"
        } else {
            "service"
        };
        let sent_at = t + 1_000 + r.below(4_000) as i64;
        let mut statuses: Vec<(&str, i64, Option<i64>)> = vec![("sent", sent_at, None)];
        let fate = r.below(1000);
        if fate < 30 {
            let code = *[131026i64, 131049, 131050, 131047]
                .get(r.below(4) as usize)
                .unwrap_or(&131026);
            statuses.push((
                "failed",
                sent_at + 2_000 + r.below(20_000) as i64,
                Some(code),
            ));
        } else if fate < 960 {
            let delivered = sent_at + 1_000 + r.below(120_000) as i64;
            statuses.push(("delivered", delivered, None));
            if r.chance(550) {
                statuses.push(("read", delivered + 5_000 + r.below(3_600_000) as i64, None));
            }
        }
        for (k, (status, at, err)) in statuses.iter().enumerate() {
            let mut st = json!({"id": wamid, "status": status, "timestamp": (at / 1000).to_string(),
                "biz_opaque_callback_data": correlation});
            match &person.user_id {
                Some(u) => st["recipient_user_id"] = json!(u),
                None => st["recipient_id"] = json!(phone),
            }
            if k == 0 {
                st["conversation"] = json!({"id": format!("conv{:x}", i * 31 + 7), "expiration_timestamp": ((at + 86_400_000) / 1000).to_string(), "origin": {"type": conv_type}});
                // Service replies and most utility messages inside an open
                // window are free; marketing never is.
                let pricing_type = match conv_type {
                    "service" => "free_customer_service",
                    "utility" if i.is_multiple_of(3) => "free_customer_service",
                    _ => "regular",
                };
                st["pricing"] = json!({"billable": pricing_type == "regular", "pricing_model": "PMP", "category": conv_type, "type": pricing_type});
            }
            if let Some(c) = err {
                st["errors"] = json!([{"code": c, "title": error_title(*c), "message": error_title(*c), "error_data": {"details": error_title(*c)}}]);
            }
            let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages",
                "value": {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881", "phone_number_id": pni}, "statuses": [st]}}]}]});
            // Webhooks arrive with jitter, so order is not guaranteed.
            let r = &mut self.rng;
            let arrival = at + r.below(30_000) as i64;
            self.schedule(arrival, &body);
            if self.rng.chance(5) {
                let again = arrival + 60_000 + self.rng.below(3_600_000) as i64;
                self.schedule(again, &body);
            }
        }
        let r = &mut self.rng;
        if r.chance(65) && statuses.iter().any(|(s, _, _)| *s == "delivered") {
            let at = sent_at + 60_000 + r.below(7_200_000) as i64;
            let mut msg = if is_template && r.chance(600) {
                let payload = if r.chance(800) { "QUERO" } else { "PARAR" };
                json!({"context": {"from": "15550783881", "id": wamid}, "id": format!("{wamid}.R"), "timestamp": (at / 1000).to_string(),
                    "type": "button", "button": {"payload": payload, "text": if payload == "QUERO" { "Quero!" } else { "Parar promoções" }}})
            } else {
                // Most typed replies quote nothing: people just write back.
                let mut m = json!({"id": format!("{wamid}.R"), "timestamp": (at / 1000).to_string(),
                    "type": "text", "text": {"body": r.pick(REPLIES)}});
                if r.chance(450) {
                    m["context"] = json!({"from": "15550783881", "id": wamid});
                }
                m
            };
            let mut contact = json!({"profile": {"name": first}});
            match &person.user_id {
                Some(u) => {
                    msg["from_user_id"] = json!(u);
                    contact["user_id"] = json!(u);
                    contact["profile"]["username"] = json!(person.username);
                }
                None => {
                    msg["from"] = json!(phone);
                    contact["wa_id"] = json!(phone);
                }
            }
            let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages",
                "value": {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881", "phone_number_id": pni},
                    "contacts": [contact], "messages": [msg]}}]}]});
            self.schedule(at + 500, &body);
            // Some who tap "Parar" also stop marketing messages in the app.
            let stopped = msg["button"]["payload"] == "PARAR";
            if stopped && self.rng.chance(500) {
                let mut item = json!({"detail": "User requested to stop marketing messages",
                    "category": "marketing_messages", "value": "stop", "timestamp": ((at + 20_000) / 1000).to_string()});
                match &person.user_id {
                    Some(u) => item["user_id"] = json!(u),
                    None => item["wa_id"] = json!(phone),
                }
                let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "user_preferences",
                    "value": {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881", "phone_number_id": pni},
                        "user_preferences": [item]}}]}]});
                self.schedule(at + 20_500, &body);
            }
        }
    }
}

/// A generated customer: the number a sender dials (none for a person who
/// hides it), the WhatsApp id Meta answers with, or only a business-scoped
/// user id and a username.
struct Customer {
    dialled: Option<String>,
    wa_id: Option<String>,
    user_id: Option<String>,
    username: Option<String>,
}

impl Customer {
    /// The `to` of a request as a CRM types it: numbers with a `+`.
    fn typed(&self, to: &str) -> String {
        if self.dialled.is_some() {
            format!("+{to}")
        } else {
            to.to_string()
        }
    }

    /// The response's `contacts[0]`: what was dialled and whom Meta found.
    fn answered(&self, to: &str) -> Value {
        match &self.user_id {
            Some(u) => json!({"input": to, "user_id": u}),
            None => json!({"input": self.typed(to), "wa_id": self.wa_id}),
        }
    }
}

fn meta_error(code: i64, title: &str, details: &str) -> Value {
    json!({"error": {"message": format!("(#{code}) {title}"), "type": "OAuthException", "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": details}, "fbtrace_id": "AbCdEfGh"}})
}

fn error_title(code: i64) -> &'static str {
    match code {
        131026 => "Message undeliverable",
        131049 => "This message was not delivered to maintain healthy ecosystem engagement.",
        131050 => "User stopped marketing messages",
        _ => "Re-engagement message",
    }
}

impl Iterator for Generator {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        loop {
            // Release events whose arrival is before the next message's time.
            let horizon = if self.next_message < self.opts.messages {
                self.message_time(self.next_message)
            } else {
                i64::MAX
            };
            if let Some(Reverse((arrival, _, _))) = self.pending.peek() {
                if *arrival <= horizon {
                    return self.pending.pop().map(|Reverse((_, _, line))| line);
                }
            }
            if self.next_message >= self.opts.messages {
                return None;
            }
            let i = self.next_message;
            self.next_message += 1;
            self.make_message(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_lines() {
        let a: Vec<_> = Generator::new(GeneratorOptions::new(200)).collect();
        let b: Vec<_> = Generator::new(GeneratorOptions::new(200)).collect();
        assert_eq!(a, b);
        let mut other = GeneratorOptions::new(200);
        other.seed = 2;
        assert_ne!(a, Generator::new(other).collect::<Vec<_>>());
    }

    #[test]
    fn every_generated_line_parses_and_proportions_are_realistic() {
        let lines: Vec<_> = Generator::new(GeneratorOptions::new(2000)).collect();
        let per_message = lines.len() as f64 / 2000.0;
        assert!(
            (2.5..4.5).contains(&per_message),
            "{per_message} events per message"
        );
        let mut ok = 0;
        let mut sends = 0;
        let (mut echoes, mut templates, mut stops) = (0, 0, 0);
        for line in &lines {
            let input = crate::line_input(line.clone(), ticks_engine::Source::Import, 0)
                .expect("generated lines parse");
            match input.events.first() {
                // A send through the API (echoes from the app are sends too).
                Some(ticks_engine::Event::Send(s)) if s.origin == ticks_engine::Origin::Api => {
                    sends += 1;
                    if s.response_code == Some(200) {
                        ok += 1;
                    }
                }
                Some(ticks_engine::Event::Send(_)) => echoes += 1,
                Some(ticks_engine::Event::Other(o)) if o.field.contains("template") => {
                    templates += 1
                }
                Some(ticks_engine::Event::Other(o)) if o.field == "user_preferences" => stops += 1,
                _ => {}
            }
        }
        assert_eq!(sends, 2000);
        // Today's traffic: app echoes, template events, opt-outs.
        assert!((10..60).contains(&echoes), "{echoes} echoes");
        assert!(templates >= 1, "{templates} template events");
        assert!(stops >= 1, "{stops} opt-outs");
        let share = ok as f64 / sends as f64;
        assert!((0.90..0.96).contains(&share), "{share} of sends got 200");
    }

    #[test]
    fn every_generated_template_send_renders_with_the_generated_definitions() {
        let opts = GeneratorOptions::new(1000);
        let page = serde_json::to_vec(&template_definitions(&opts)).expect("json");
        let page = crate::parse_template_page(&page).expect("the definitions parse");
        assert!(page.rejected.is_empty(), "{:?}", page.rejected);
        assert_eq!(page.templates.len(), TEMPLATES.len() + 2, "two edits");
        let mut catalog = ticks_engine::templates::Catalog::default();
        for (def, seen) in page.templates {
            catalog.add(def, seen.expect("a time in force"));
        }
        let (mut rendered, mut edited) = (0, 0);
        for line in Generator::new(opts.clone()) {
            let input = crate::line_input(line, ticks_engine::Source::Import, 0).expect("parses");
            let Some(ticks_engine::Event::Send(send)) = input.events.first() else {
                continue;
            };
            let (Some(name), Some(language)) = (&send.template, &send.template_language) else {
                continue;
            };
            let def = catalog
                .in_force(name, language, send.recorded_ms)
                .unwrap_or_else(|| panic!("{name} has a definition"));
            let r = ticks_engine::templates::render(&def.content, &send.params);
            assert_eq!(r.error, None, "{name}: {}", r.text);
            assert!(!r.text.contains("{{"), "{}", r.text);
            rendered += 1;
            edited += usize::from(r.text.contains("frete grátis"));
        }
        assert!(rendered > 850, "{rendered}");
        assert!(edited > 10, "{edited} sends after an edit show it");
    }

    #[test]
    fn each_campaign_sends_its_own_template_and_amounts_agree() {
        for line in Generator::new(GeneratorOptions::new(500)) {
            let v: Value = serde_json::from_slice(&line).expect("json");
            let Some(template) = v["request"]["template"].as_object() else {
                continue;
            };
            let name = v["name"].as_str().expect("a name");
            assert_eq!(template["name"], template_of(name), "{name}");
            let currency = &template["components"][0]["parameters"][1]["currency"];
            let shown = currency["fallback_value"].as_str().expect("fallback");
            let amount = currency["amount_1000"].as_i64().expect("amount");
            assert_eq!(
                shown,
                format!("R$ {},{:02}", amount / 1000, amount % 1000 / 10)
            );
        }
    }

    #[test]
    fn data_ending_before_now_has_no_event_in_the_future() {
        let now = 1_796_000_000_000;
        let opts = GeneratorOptions::new(300).ending_before(now);
        for line in Generator::new(opts) {
            let input = crate::line_input(line, ticks_engine::Source::Import, 0).expect("parses");
            for event in &input.events {
                let at = match event {
                    ticks_engine::Event::Send(s) => s.recorded_ms,
                    ticks_engine::Event::Status(s) => s.at_ms,
                    ticks_engine::Event::Inbound(m) => m.at_ms,
                    ticks_engine::Event::Other(o) => o.at_ms,
                };
                assert!(at < now, "{event:?} at {at}");
            }
        }
    }
}
