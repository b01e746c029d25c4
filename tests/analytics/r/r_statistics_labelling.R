# Expected values for tests/analytics/test_statistics_labelling.py (issue 13, deliverable 6).
# Run: Rscript tests/analytics/r/r_statistics_labelling.R > tests/analytics/r/r_statistics_labelling.json
# R 4.2.2, survival 3.5-3, coin 1.4-2, jsonlite (Debian r-base-core, r-cran-survival, r-cran-coin, r-cran-jsonlite).
suppressMessages({library(survival); library(coin); library(jsonlite)})
lung <- survival::lung
lung$status <- lung$status - 1                      # 1 = death, as lifelines.datasets.load_lung()
lung$ecog_group <- factor(pmin(lung$ph.ecog, 2))    # ECOG 0 / 1 / 2+ (one patient has 3)
# complete cases (drops the one row with missing ph.ecog), so that drop1 refits on the same rows
lung <- na.omit(lung[, c("time", "status", "age", "sex", "ph.ecog", "ecog_group")])
num <- function(x) unname(as.numeric(x))
zph_table <- function(z) {
  t <- z$table
  setNames(lapply(rownames(t), function(r) list(chisq = num(t[r, "chisq"]), df = num(t[r, "df"]),
                                                 p = num(t[r, "p"]))), rownames(t))
}
tests <- function(fit) {
  s <- summary(fit)
  list(loglik = num(fit$loglik),
       lr = list(chisq = num(s$logtest["test"]), df = num(s$logtest["df"]), p = num(s$logtest["pvalue"])),
       score = list(chisq = num(s$sctest["test"]), df = num(s$sctest["df"]), p = num(s$sctest["pvalue"])),
       wald = list(chisq = num(s$waldtest["test"]), df = num(s$waldtest["df"]), p = num(s$waldtest["pvalue"])),
       coef = as.list(coef(fit)))
}
drop1_table <- function(fit) {
  d <- drop1(fit, test = "Chisq")
  rows <- rownames(d)[-1]
  setNames(lapply(rows, function(r) list(chisq = num(d[r, "LRT"]), df = num(d[r, "Df"]),
                                         p = num(d[r, "Pr(>Chi)"]))), rows)
}
ctl <- coxph.control(eps = 1e-12, toler.chol = 1e-14, iter.max = 100)  # iterated to the maximum
out <- list()
fit3 <- coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lung, ties = "efron", control = ctl)
out$cox_age_sex_ecog <- c(tests(fit3), list(drop1 = drop1_table(fit3)))
for (tr in c("km", "rank", "identity", "log"))
  out[[paste0("zph_age_sex_ecog_", tr)]] <- zph_table(cox.zph(fit3, transform = tr, terms = TRUE, global = TRUE))
fitf <- coxph(Surv(time, status) ~ age + sex + ecog_group, data = lung, ties = "efron", control = ctl)
out$cox_age_sex_ecoggroup <- c(tests(fitf), list(drop1 = drop1_table(fitf)))
out$zph_age_sex_ecoggroup_km <- zph_table(cox.zph(fitf, transform = "km", terms = TRUE, global = TRUE))
out$zph_age_sex_ecoggroup_km_by_column <- zph_table(cox.zph(fitf, transform = "km", terms = FALSE, global = TRUE))
fitu <- coxph(Surv(time, status) ~ ecog_group, data = lung, ties = "efron", control = ctl)
out$cox_ecoggroup <- c(tests(fitu), list(anova = {a <- anova(fitu); list(chisq = num(a[2, "Chisq"]),
                                                  df = num(a[2, "Df"]), p = num(a[2, "Pr(>|Chi|)"]))}))
# R's own default stopping (eps = 1e-9), for the record
out$cox_age_sex_ecog_default_control_coef <- as.list(coef(coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lung)))

# Exact conditional Wilcoxon signed-rank test (zeros dropped: zero.method = "Wilcoxon"; mid-ranks)
signed <- function(d) {
  y <- d; x <- rep(0, length(d))
  t <- wilcoxsign_test(y ~ x, zero.method = "Wilcoxon", distribution = "exact")
  list(p = num(pvalue(t)))
}
set.seed(13)
examples <- list(
  paper_ecog = c(1, 2, 2, 1, 0, 0, 3, 0, 2, 1, 1, 3, 2, 0, 2, 3) - c(1, 1, 1, 0, 0, 0, 3, 0, 2, 1, 1, 1, 1, 0, 1, 3),
  small_mixed = c(1, -1, 2, 0, -2, 1, 1, -3, 2, 0, 1),
  ecog_300 = sample(c(-2, -1, 0, 1, 2), 300, replace = TRUE, prob = c(0.08, 0.3, 0.4, 0.17, 0.05)),
  kps_1000 = 10 * sample(c(-3, -2, -1, 0, 1, 2, 3), 1000, replace = TRUE, prob = c(.03, .07, .2, .35, .22, .09, .04))
)
set.seed(7)  # an improvement: a p-value far in the tail (1e-21), where the enumeration must widen its windows
examples$tail_1000 <- sample(c(-3, -2, -1, 0, 1, 2, 3), 1000, replace = TRUE,
                             prob = c(.01, .04, .18, .3, .32, .11, .04))
out$wilcoxsign_exact <- lapply(examples, function(d) c(list(d = d), signed(d)))
out$versions <- list(R = R.version.string, survival = as.character(packageVersion("survival")),
                     coin = as.character(packageVersion("coin")))
cat(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "\n")
