# TEST SCAFFOLDING (see build.sh): stands in for eclipse-mosquitto:2.0.22, which cannot be pulled here.
# Debian 12's mosquitto (2.0.11) at the eclipse image's paths, running as uid/gid 1883 after the same
# start-up chown.
ARG BASE
FROM ${BASE}
# Debian's package creates a system user with a low uid; renumber it to the eclipse image's 1883.
RUN apt-get update \
 && apt-get install -y --no-install-recommends mosquitto \
 && rm -rf /var/lib/apt/lists/* \
 && usermod -u 1883 mosquitto && groupmod -g 1883 mosquitto \
 && mkdir -p /mosquitto/config /mosquitto/data /mosquitto/log \
 && chown -R mosquitto:mosquitto /mosquitto /var/lib/mosquitto /var/log/mosquitto
COPY mosquitto-entrypoint.sh /docker-entrypoint.sh
EXPOSE 1883
ENTRYPOINT ["/docker-entrypoint.sh"]
CMD ["/usr/sbin/mosquitto", "-c", "/mosquitto/config/mosquitto.conf"]
