# TEST SCAFFOLDING (see build.sh): a Debian 12 minbase root file system made by debootstrap.
FROM scratch
ADD rootfs.tar /
ENV LANG=C.UTF-8
CMD ["bash"]
