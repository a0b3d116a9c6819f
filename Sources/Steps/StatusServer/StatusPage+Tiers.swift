import Catalog
import Foundation
import PipelineCore

extension StatusPage {
    /// A source's tier, beside its state: warm stands out, since it reads back at once and costs more.
    static func tierBadge(_ tier: String) -> String {
        "<span class=\"badge tier\" title=\"tier\">\(htmlEscape(tier))</span>"
    }

    /// Cold and warm side by side: what each holds, in which class, and what that costs a month at list price.
    static func tiers(_ s: StatusSnapshot) -> String {
        var html = "<section id=\"tiers\"><h2>Tiers and storage cost</h2>"
        html += "<table class=\"tiers\"><thead><tr><th>Tier</th><th>Storage class</th><th class=\"num\">Sources</th><th class=\"num\">Files archived</th>"
            + "<th class=\"num\">Stored</th><th class=\"num\">USD per GB-month</th><th class=\"num\">Estimated per month</th></tr></thead><tbody>"
        for tier in s.tiers {
            html += "<tr id=\"tier-\(htmlEscape(tier.tier))\"><td>\(htmlEscape(tier.tier))</td><td>\(htmlEscape(tier.storageClass))</td>"
                + "<td class=\"num\">\(Format.count(tier.sources))</td><td class=\"num\">\(Format.count(tier.filesArchived))/\(Format.count(tier.filesTotal))</td>"
                + "<td class=\"num\">\(Format.bytes(tier.bytesStored))</td><td class=\"num\">\(String(format: "%.5f", tier.usdPerGBMonth))</td>"
                + "<td class=\"num\">\(usd(tier.estimatedMonthlyUSD))</td></tr>"
        }
        html += "</tbody></table><p class=\"muted small\">Estimated at S3 list prices (us-east-1), storage only, before bundle compression: "
            + "requests, retrievals, minimum storage durations and minimum object sizes are not counted. Together: \(usd(s.estimatedMonthlyUSD)) a month.</p>"
        return html + "</section>\n"
    }

    static func usd(_ value: Double) -> String {
        value < 0.01 && value > 0 ? "< $0.01" : String(format: "$%.2f", value)
    }
}
